"""Rate limits on routes: which policies apply, the decisions, and the response fields.

Every route gets the `general` policy per client address and, under `/api`, the `api` policy
per user (or address when anonymous); a route may add one more with `opt={"rate_limit": NAME}`
or opt out with `opt={"rate_limit": False}` (health probes). Address-keyed policies are
decided before authentication (so unauthenticated floods count too), `api` after it. A
limited request gets a 429 problem with Retry-After; every response of a limited route
carries RateLimit-Policy (all its policies) and RateLimit (the one closest to its limit).

What a route needs is worked out once into a `RoutePlan`. A plan of local policies only (no
strict or skip-successful one: every route but the auth ones) is decided by its `InlineSteps`:
closures bound once per plan around the policies' decision functions
(`RateLimitActor.decider`). Such a plan decides both policies in one step once the request is
authenticated (the key is known then), and the address's alone when authentication or the
access rule refuses the request: every request is counted as if decided before authentication,
at one call per request. The others go through `enforce`, which awaits Redis for strict
policies and keeps the outcomes that must be settled once the status is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
_CACHED_ANSWERS = 4096

Field = tuple[bytes, bytes]
AddressOf = Callable[[Scope, dict[bytes, bytes]], str]
"""`(scope, headers)` -> the client address."""
Outcome = tuple["PolicyShape", str, int]
"""A policy, the key it was decided for, and `GcraStore.admit`'s answer (< 0: refused)."""


def address_of(trusted_proxies: tuple[str, ...]) -> AddressOf:
    """How to read the client address: the peer's, or, behind trusted proxies, the one they
    forwarded (`client_address`)."""
    if trusted_proxies:
        return lambda scope, headers: client_address(scope, headers, trusted_proxies)

    def peer(scope: Scope, headers: dict[bytes, bytes]) -> str:
        client = scope.get("client")
        return client[0] if client else "unknown"

    return peer


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
        return self.allowed_item(admitted)

    def allowed_item(self, admitted: int) -> bytes:
        """The RateLimit item for an admitted request (`admitted` >= 0)."""
        # An admitted unit is part of the backlog, so fewer than `limit` remain: no clamping.
        left = (self.burst - admitted) // self.interval
        return self.template % (left, -(-admitted // NS_PER_SECOND))

    def load(self, admitted: int) -> float:
        """How full the bucket is after the decision: refused first, then backlog / burst."""
        return math.inf if admitted < 0 else admitted / self.burst

    def decision(self, admitted: int) -> Decision:
        return backlog_decision(self.applied, admitted)


@dataclass(frozen=True, slots=True)
class InlineSteps:
    """A plan's decisions when it has one address-keyed policy, all decided locally, and
    nothing to settle. Each step raises the 429 when refused."""

    decide: Callable[[Scope, dict[bytes, bytes], str | None], tuple[Field, Field]]
    """Once the request is authenticated: `(scope, headers, user id or None)` -> the route's
    RateLimit-Policy and RateLimit fields, deciding the address-keyed policy, then the
    user-keyed one (for the user, else the address)."""
    admit_address: Callable[[Scope, dict[bytes, bytes]], int]
    """For a request that authentication or the access rule refused: `(scope, headers)` -> the
    address's decision alone (`GcraStore.admit`'s answer), so that refused requests count too."""


@dataclass(frozen=True, slots=True)
class RoutePlan:
    by_address: tuple[PolicyShape, ...]
    by_user: PolicyShape | None
    policy_field: Field
    inline: InlineSteps | None


@dataclass(slots=True)
class RateLimits:
    actor: RateLimitActor
    policies: dict[str, RatePolicy]
    trusted_proxies: tuple[str, ...]
    _plans: tuple[dict[object, RoutePlan | None], dict[object, RoutePlan | None]] = field(
        default_factory=lambda: ({}, {})
    )
    """Plans by route handler, for paths outside and under /api."""
    _shapes: dict[str, PolicyShape] = field(default_factory=dict)
    """One shape per policy, shared by every plan."""
    _answers: dict[bytes, dict[int, tuple[Field, Field]]] = field(default_factory=dict)
    """Formatted fields of the inline plans, by RateLimit-Policy value (`inline_steps`)."""

    address: AddressOf = field(init=False)
    """The client address that address-keyed policies are decided for."""

    def __post_init__(self) -> None:
        self.actor.on_change = self._forget_plans
        self.address = address_of(self.trusted_proxies)

    def _forget_plans(self) -> None:
        for plans in self._plans:
            plans.clear()
        self._shapes.clear()
        self._answers.clear()

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
        by_user = self._shape(self.policies["api"]) if api else None
        listed = shapes if by_user is None else [*shapes, by_user]
        policy_field = (b"ratelimit-policy", ", ".join(s.item for s in listed).encode())
        local = not any(s.policy.strict or s.policy.skip_successful for s in listed)
        return RoutePlan(
            by_address=tuple(shapes),
            by_user=by_user,
            policy_field=policy_field,
            inline=inline_steps(
                policy_field,
                shapes[0],
                by_user,
                self._answers.setdefault(policy_field[1], {}),
                self.address,
            )
            if local and len(shapes) == 1
            else None,
        )

    def _shape(self, policy: RatePolicy) -> PolicyShape:
        shape = self._shapes.get(policy.name)
        if shape is None:
            applied = self.actor.applied(policy)
            shape = PolicyShape(policy, applied, self.actor.decider(policy))
            self._shapes[policy.name] = shape
        return shape

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
                raise refused(plan.policy_field, outcomes)

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


def refused(policy_field: Field, outcomes: list[Outcome]) -> TooManyRequests:
    """The 429 for the last of `outcomes`, with every field of the route."""
    shape, _, admitted = outcomes[-1]
    return TooManyRequests(
        f"Too many requests under the '{shape.policy.name}' limit; retry later",
        headers={
            "RateLimit-Policy": policy_field[1].decode(),
            "RateLimit": shape.remaining(admitted).decode(),
            "Retry-After": retry_after_header(shape.decision(admitted)),
        },
    )


def inline_steps(
    policy_field: Field,
    general: PolicyShape,
    user: PolicyShape | None,
    answers: dict[int, tuple[Field, Field]],
    address: AddressOf,
) -> InlineSteps:
    """The steps of a local plan, with every value they read bound once (the hot path): the
    field goes to the policy closest to its limit, the address's on a tie.

    `answers` keeps the fields already formatted, shared by the plans of one RateLimit-Policy
    value: by `2 * (reset * (limit + 1) + remaining)`, plus one for the user's policy. Remaining
    and reset move together, so a policy has about `limit + window seconds` of them (1,900 and
    160 for the default general and api policies), and most requests reuse one."""
    decide_address = general.decide
    general_burst = general.burst
    general_item = general.allowed_item

    def admit_address(scope: Scope, headers: dict[bytes, bytes]) -> int:
        client = address(scope, headers)
        admitted = decide_address(client, 1)
        if admitted < 0:
            raise refused(policy_field, [(general, client, admitted)])
        return admitted

    if user is None:

        def address_only(
            scope: Scope, headers: dict[bytes, bytes], key: str | None
        ) -> tuple[Field, Field]:
            return policy_field, (b"ratelimit", general_item(admit_address(scope, headers)))

        return InlineSteps(address_only, admit_address)
    decide_user = user.decide
    user_burst = user.burst
    user_item = user.allowed_item
    general_interval, user_interval = general.interval, user.interval
    general_span, user_span = general.applied.limit + 1, user.applied.limit + 1
    answer = answers.get

    def both(scope: Scope, headers: dict[bytes, bytes], key: str | None) -> tuple[Field, Field]:
        client = address(scope, headers)
        if key is None:
            key = client
        first = decide_address(client, 1)
        if first < 0:
            raise refused(policy_field, [(general, client, first)])
        second = decide_user(key, 1)
        if second < 0:
            raise refused(policy_field, [(general, client, first), (user, key, second)])
        # first / general_burst >= second / user_burst, without dividing: `load` ranks alike.
        if first * user_burst >= second * general_burst:
            left = (general_burst - first) // general_interval
            item_key = 2 * (-(-first // NS_PER_SECOND) * general_span + left)
            fields = answer(item_key)
            if fields is None:
                fields = _remember(answers, item_key, policy_field, general_item(first))
        else:
            left = (user_burst - second) // user_interval
            item_key = 2 * (-(-second // NS_PER_SECOND) * user_span + left) + 1
            fields = answer(item_key)
            if fields is None:
                fields = _remember(answers, item_key, policy_field, user_item(second))
        return fields

    return InlineSteps(both, admit_address)


def _remember(
    answers: dict[int, tuple[Field, Field]], item_key: int, policy_field: Field, item: bytes
) -> tuple[Field, Field]:
    fields = policy_field, (b"ratelimit", item)
    if len(answers) < _CACHED_ANSWERS:
        answers[item_key] = fields
    return fields


def needs_settling(outcomes: list[Outcome]) -> bool:
    return any(shape.policy.skip_successful for shape, _, _ in outcomes)
