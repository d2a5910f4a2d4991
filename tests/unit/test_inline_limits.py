"""A route's limits, decided as the gate decides them, answer exactly as its policies would,
and count while Redis is down."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.types import Scope
from redis.asyncio import Redis

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import Decision, GcraStore
from actors.ratelimit.headers import remaining_item
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests
from server.http.limits import Field, Outcome, RateLimits, RoutePlan, tightest_field
from tests.support.services import free_port

ADDRESS = RatePolicy("general", 4, 6)
USER = RatePolicy("api", 2, 5)


def _scope(address: str) -> Scope:
    return cast(Scope, {"client": (address, 50000)})


class _Handler:
    def __init__(self) -> None:
        self.opt: dict[str, Any] = {"auth": True}


async def decide(limits: RateLimits, plan: RoutePlan, address: str, user: str | None) -> Field:
    """The gate's steps for an authenticated request (`user`, or None when anonymous): the
    RateLimit field, or the 429."""
    key = limits.address(_scope(address), {})
    outcomes: list[Outcome] = []
    await limits.enforce(plan, plan.by_address, key, outcomes)
    assert plan.by_user is not None
    await limits.enforce(plan, (plan.by_user,), user or key, outcomes)
    return tightest_field(outcomes)


def _fuller(first: Decision, second: Decision) -> tuple[RatePolicy, Decision]:
    """The fuller bucket (reset time over window); the address's on a tie."""
    if first.reset_after / ADDRESS.window_seconds >= second.reset_after / USER.window_seconds:
        return ADDRESS, first
    return USER, second


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3, allow_nan=False),
            st.sampled_from(["198.51.100.1", "198.51.100.2"]),
            st.sampled_from(["user-1", "user-2", None]),
        ),
        min_size=1,
        max_size=60,
    )
)
async def test_a_routes_limits_decide_as_the_policies(
    requests: list[tuple[float, str, str | None]],
) -> None:
    """Allowed, refused for the address, refused for the user, anonymous (the user's policy is
    then keyed by the address): the same answers, fields, buckets and refusals, and every
    admitted unit recorded for the cluster sync (the actor has Redis, never reached here)."""
    now = [0.0]
    redis = Redis(host="127.0.0.1", port=free_port())
    actor = RateLimitActor(redis=redis, instance_id="test", clock=lambda: now[0])
    limits = RateLimits(actor, {"general": ADDRESS, "api": USER}, ())
    plan = limits.plan(_Handler(), True)
    assert plan is not None
    assert plan.policy_field == (b"ratelimit-policy", b'"general";q=4;w=6, "api";q=2;w=5')
    reference = GcraStore(clock=lambda: now[0])
    admitted = 0
    for gap, address, user in requests:
        now[0] += gap
        first = reference.check(ADDRESS, address)
        second = reference.check(USER, user or address) if first.allowed else None
        admitted += first.allowed + (second is not None and second.allowed)
        if second is None or not second.allowed:
            with pytest.raises(TooManyRequests) as refusal:
                await decide(limits, plan, address, user)
            policy, decision = (ADDRESS, first) if second is None else (USER, second)
            assert refusal.value.headers is not None
            assert refusal.value.headers["RateLimit"] == remaining_item(policy, decision)
            continue
        policy, decision = _fuller(first, second)
        expected = (b"ratelimit", remaining_item(policy, decision).encode())
        assert await decide(limits, plan, address, user) == expected
    await redis.aclose()
    assert actor.details()["limited"] == reference.refused
    assert actor.details()["units_to_sync"] == admitted
    for policy in (ADDRESS, USER):
        for key in ("198.51.100.1", "198.51.100.2", "user-1", "user-2"):
            assert actor.check_local(policy, key) == reference.check(policy, key)


async def test_while_redis_is_down_a_route_decides_the_share_and_counts_it() -> None:
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    actor = RateLimitActor(redis=redis, instance_id="test", redis_timeout=0.5)
    limits = RateLimits(actor, {"general": ADDRESS, "api": USER}, ())
    try:
        await actor.check(RatePolicy("login", 3, 900, strict=True), "a")  # nothing listens
    finally:
        await redis.aclose()
    assert actor.degraded
    before = int(str(actor.details()["fallback_decisions"]))
    plan = limits.plan(_Handler(), True)
    assert plan is not None
    await decide(limits, plan, "198.51.100.9", "user-9")
    await decide(limits, plan, "198.51.100.9", "user-9")
    with pytest.raises(TooManyRequests):  # the user's policy: 2 units
        await decide(limits, plan, "198.51.100.9", "user-9")
    assert actor.details()["fallback_decisions"] == before + 6
    outcomes: list[Outcome] = []
    await limits.enforce(plan, plan.by_address, "198.51.100.9", outcomes)  # refused by auth
    assert actor.details()["fallback_decisions"] == before + 7
    with pytest.raises(TooManyRequests):  # the address's policy: 4 units
        await limits.enforce(plan, plan.by_address, "198.51.100.9", outcomes)
