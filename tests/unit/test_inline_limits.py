"""A local route plan's steps answer exactly as the policies' deciders would, and count while
Redis is down."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.types import Scope
from redis.asyncio import Redis

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import (
    NS_PER_SECOND,
    GcraStore,
    UnitLog,
    backlog_decision,
    interval_ticks,
)
from actors.ratelimit.headers import remaining_item
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests
from server.http.limits import PolicyShape, RateLimits, address_of, inline_steps
from tests.support.services import free_port

ADDRESS = RatePolicy("general", 4, 6)
USER = RatePolicy("api", 2, 5)
FIELD = (b"ratelimit-policy", b"both")


def _burst(policy: RatePolicy) -> int:
    return policy.limit * interval_ticks(policy, NS_PER_SECOND)


def _scope(address: str) -> Scope:
    return cast(Scope, {"client": (address, 50000)})


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
def test_a_plans_steps_decide_as_the_deciders(
    requests: list[tuple[float, str, str | None]],
) -> None:
    """Allowed, refused for the address, refused for the user, anonymous (the user's policy is
    then keyed by the address): the same answers, fields, TATs, logged units and refusals."""
    now = [0.0]
    logs: dict[str, dict[str, UnitLog]] = {"inline": {}, "reference": {}}

    def store(name: str) -> GcraStore:
        return GcraStore(
            clock=lambda: now[0], log_for=lambda p: logs[name].setdefault(p.name, UnitLog())
        )

    inline, reference = store("inline"), store("reference")
    steps = inline_steps(
        FIELD,
        PolicyShape(ADDRESS, ADDRESS, inline.decider(ADDRESS)),
        PolicyShape(USER, USER, inline.decider(USER)),
        {},
        address_of(()),
    )
    for gap, address, user in requests:
        now[0] += gap
        first = reference.admit(ADDRESS, address)
        second = reference.admit(USER, user or address) if first >= 0 else -1
        if first < 0 or second < 0:
            with pytest.raises(TooManyRequests) as refusal:
                steps.decide(_scope(address), {}, user)
            policy, admitted = (ADDRESS, first) if first < 0 else (USER, second)
            assert refusal.value.headers is not None
            expected = remaining_item(policy, backlog_decision(policy, admitted))
            assert refusal.value.headers["RateLimit"] == expected
            continue
        policy, admitted = (  # the fuller bucket; the address's on a tie
            (ADDRESS, first) if first * _burst(USER) >= second * _burst(ADDRESS) else (USER, second)
        )
        expected_item = remaining_item(policy, backlog_decision(policy, admitted)).encode()
        assert steps.decide(_scope(address), {}, user) == (FIELD, (b"ratelimit", expected_item))
    assert inline.refused == reference.refused
    for name in ("general", "api"):
        assert logs["inline"][name].tally() == logs["reference"][name].tally()
    for policy in (ADDRESS, USER):
        for key in ("198.51.100.1", "198.51.100.2", "user-1", "user-2"):
            assert inline.peek(policy, key) == reference.peek(policy, key)


class _Handler:
    def __init__(self) -> None:
        self.opt: dict[str, Any] = {"auth": True}


async def test_while_redis_is_down_a_plan_decides_the_share_and_counts_it() -> None:
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
    assert plan.inline is not None
    scope = _scope("198.51.100.9")
    plan.inline.decide(scope, {}, "user-9")
    plan.inline.decide(scope, {}, "user-9")
    with pytest.raises(TooManyRequests):  # the user's policy: 2 units
        plan.inline.decide(scope, {}, "user-9")
    assert actor.details()["fallback_decisions"] == before + 6
    plan.inline.admit_address(scope, {})
    assert actor.details()["fallback_decisions"] == before + 7
    with pytest.raises(TooManyRequests):  # the address's policy: 4 units
        plan.inline.admit_address(scope, {})
