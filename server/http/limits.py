"""Rate limits on routes: which policies apply, the decisions, and the response fields.

Every route gets the `general` policy per client address and, under `/api`, the `api` policy
per user (or address when anonymous); a route may add one more with `opt={"rate_limit": NAME}`
or opt out with `opt={"rate_limit": False}` (health probes). Address-keyed policies are
decided before authentication (so unauthenticated floods count too), `api` after it. A
limited request gets a 429 problem with Retry-After; every response of a limited route
carries RateLimit-Policy (all its policies) and RateLimit (the one closest to its limit).

What a route needs is worked out once into a `RoutePlan`. A plan of local policies only (no
strict or skip-successful one: every route but the auth ones) is decided inline: two calls of
decision functions bound once per plan (`RateLimitActor.decider`) and one formatted field, with
nothing allocated per request besides that field. The others go through `enforce`, which
awaits Redis for strict policies and keeps the outcomes that must be settled once the status
is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from litestar.types import Scope

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import (
    NS_PER_SECOND,
    Decide,
    Decision,
    backlog_decision,
    interval_ticks,
)
from actors.ratelimit.headers import (
    policy_item,
    remaining_item,
    remaining_template,
    retry_after_header,
)
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests
from server.http.client import client_address

RATE_LIMIT_FIELDS_KEY = "sevenp.rate_limit_fields"
RATE_LIMIT_SETTLE_KEY = "sevenp.rate_limit_settle"

Field = tuple[bytes, bytes]
Outcome = tuple["PolicyShape", str, int]
"""A policy, the key it was decided for, and `GcraStore.admit`'s answer (< 0: refused)."""


class PolicyShape:
    """A policy as decided (`policy`) and as enforced here now (`applied`: the instance's share
    while Redis is down), with what its RateLimit item needs precomputed."""

    __slots__ = ("applied", "burst", "decide", "interval", "item", "policy", "template")

    def __init__(self, policy: RatePolicy, applied: RatePolicy, decide: Decide) -> None:
        self.policy = policy
        self.applied = applied
        self.decide = decide
        """The local decision (`RateLimitActor.decider`); strict policies are decided in Redis."""
        self.interval = interval_ticks(applied, NS_PER_SECOND)
        self.burst = applied.limit * self.interval
        self.item = policy_item(applied)
        self.template = remaining_template(applied)

    def remaining(self, admitted: int) -> bytes:
        """The RateLimit item for an `admit` answer."""
        if admitted < 0:
            return remaining_item(self.applied, self.decision(admitted)).encode()
        # An admitted unit is part of the backlog, so fewer than `limit` remain: no clamping.
        left = (self.burst - admitted) // self.interval
        return self.template % (left, -(-admitted // NS_PER_SECOND))

    def load(self, admitted: int) -> float:
        """How full the bucket is after the decision: refused first, then backlog / burst."""
        return math.inf if admitted < 0 else admitted / self.burst

    def decision(self, admitted: int) -> Decision:
        return backlog_decision(self.applied, admitted)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    by_address: tuple[PolicyShape, ...]
    by_user: PolicyShape | None
    inline: bool
    """One address-keyed policy, all decided locally, nothing to settle."""
    policy_field: Field


@dataclass(slots=True)
class RateLimits:
    actor: RateLimitActor
    policies: dict[str, RatePolicy]
    trusted_proxies: tuple[str, ...]
    _plans: tuple[dict[object, RoutePlan | None], dict[object, RoutePlan | None]] = field(
        default_factory=lambda: ({}, {})
    )
    """Plans by route handler, for paths outside and under /api."""

    def __post_init__(self) -> None:
        self.actor.on_change = self._forget_plans

    def _forget_plans(self) -> None:
        for plans in self._plans:
            plans.clear()

    def plan(self, handler: Any, api: bool) -> RoutePlan | None:
        """The plan of a route handler (its `opt` decides); None for a route that opted out."""
        plans = self._plans[api]
        try:
            return plans[handler]
        except KeyError:
            plan = plans[handler] = self._plan(handler.opt, api)
            return plan

    def _plan(self, opt: dict[str, Any], api: bool) -> RoutePlan | None:
        extra = opt.get("rate_limit")
        if extra is False:
            return None
        chosen = [self.policies["general"]]
        if isinstance(extra, str):
            chosen.append(self.policies[extra])
        shapes = [self._shape(policy) for policy in chosen]
        by_user = self._shape(self.policies["api"])
        listed = [*shapes, by_user] if api else shapes
        return RoutePlan(
            by_address=tuple(shapes),
            by_user=by_user if api else None,
            inline=len(shapes) == 1
            and not any(s.policy.strict or s.policy.skip_successful for s in listed),
            policy_field=(b"ratelimit-policy", ", ".join(s.item for s in listed).encode()),
        )

    def _shape(self, policy: RatePolicy) -> PolicyShape:
        return PolicyShape(policy, self.actor.applied(policy), self.actor.decider(policy))

    def address(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        if self.trusted_proxies:
            return client_address(scope, headers, self.trusted_proxies)
        client = scope.get("client")
        return client[0] if client else "unknown"

    def admit_by_address(self, plan: RoutePlan, address: str) -> int:
        """An inline plan's address-keyed decision; 429 when refused."""
        shape = plan.by_address[0]
        admitted = shape.decide(address, 1)
        if admitted < 0:
            raise refused(plan, [(shape, address, admitted)])
        return admitted

    def admit_by_user(self, plan: RoutePlan, address: str, first: int, key: str) -> Field:
        """An inline plan's user-keyed decision (after `admit_by_address` answered `first`);
        429 when refused, else the RateLimit field."""
        general = plan.by_address[0]
        user = plan.by_user
        if user is None:
            return (b"ratelimit", general.remaining(first))
        second = user.decide(key, 1)
        if second < 0:
            raise refused(plan, [(general, address, first), (user, key, second)])
        if general.load(first) >= user.load(second):
            return (b"ratelimit", general.remaining(first))
        return (b"ratelimit", user.remaining(second))

    async def enforce(
        self, plan: RoutePlan, shapes: tuple[PolicyShape, ...], key: str, outcomes: list[Outcome]
    ) -> None:
        """Decide each policy for `key`, recording the outcomes; 429 at the first refusal."""
        actor = self.actor
        for shape in shapes:
            policy = shape.policy
            if policy.strict:
                admitted = _as_admitted(await actor.check(policy, key))
            else:
                admitted = shape.decide(key, 1)
            outcomes.append((shape, key, admitted))
            if admitted < 0:
                raise refused(plan, outcomes)

    async def settle(self, outcomes: list[Outcome], status: int) -> None:
        """After the status is known: give back what skip-successful policies took."""
        if status >= 400:
            return
        for shape, key, admitted in outcomes:
            if shape.policy.skip_successful and admitted >= 0:
                await self.actor.refund(shape.policy, key)


def _as_admitted(decision: Decision) -> int:
    if decision.allowed:
        return round(decision.reset_after * NS_PER_SECOND)
    return -round(decision.retry_after * NS_PER_SECOND) - 1


def tightest_field(outcomes: list[Outcome]) -> Field:
    """The RateLimit field: the item of the policy closest to its limit."""
    shape, _, admitted = max(outcomes, key=lambda outcome: outcome[0].load(outcome[2]))
    return (b"ratelimit", shape.remaining(admitted))


def refused(plan: RoutePlan, outcomes: list[Outcome]) -> TooManyRequests:
    """The 429 for the last of `outcomes`, with every field of the route."""
    shape, _, admitted = outcomes[-1]
    return TooManyRequests(
        f"Too many requests under the '{shape.policy.name}' limit; retry later",
        headers={
            "RateLimit-Policy": plan.policy_field[1].decode(),
            "RateLimit": shape.remaining(admitted).decode(),
            "Retry-After": retry_after_header(shape.decision(admitted)),
        },
    )


def needs_settling(outcomes: list[Outcome]) -> bool:
    return any(shape.policy.skip_successful for shape, _, _ in outcomes)
