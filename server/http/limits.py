"""Rate limits on routes: which policies apply, the decisions, and the response fields.

Every route gets the `general` policy per client address and, under `/api`, the `api` policy
per user (or address when anonymous); a route may add one more with `opt={"rate_limit": NAME}`
or opt out with `opt={"rate_limit": False}` (health probes). Address-keyed policies are
decided before authentication (so unauthenticated floods count too), `api` after it. A
limited request gets a 429 problem with Retry-After; every response of a limited route
carries RateLimit-Policy (all its policies) and RateLimit (the one closest to its limit).

What a route needs is worked out once into a `RoutePlan`: its policies and its RateLimit-Policy
value, which announces the policies as this instance enforces them now (its share while Redis
is down), so plans are worked out again when the limiter's mode changes. Each decision goes
through `RateLimitActor.check` (in process, or in Redis for strict policies); the outcomes are
kept until the status is known, when skip-successful policies give their unit back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.types import Scope

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import Decision
from actors.ratelimit.headers import policy_item, remaining_item, retry_after_header
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests
from server.http.client import client_address

RATE_LIMIT_FIELDS_KEY = "sevenp.rate_limit_fields"
RATE_LIMIT_SETTLE_KEY = "sevenp.rate_limit_settle"

Field = tuple[bytes, bytes]
AddressOf = Callable[[Scope, dict[bytes, bytes]], str]
"""`(scope, headers)` -> the client address."""
Outcome = tuple[RatePolicy, str, Decision]
"""A policy, the key it was decided for, and the decision."""


def address_of(trusted_proxies: tuple[str, ...]) -> AddressOf:
    """How to read the client address: the peer's, or, behind trusted proxies, the one they
    forwarded (`client_address`)."""
    if trusted_proxies:
        return lambda scope, headers: client_address(scope, trusted_proxies)

    def peer(scope: Scope, headers: dict[bytes, bytes]) -> str:
        client = scope.get("client")
        return client[0] if client else "unknown"

    return peer


@dataclass(frozen=True, slots=True)
class RoutePlan:
    by_address: tuple[RatePolicy, ...]
    by_user: RatePolicy | None
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

    address: AddressOf = field(init=False)
    """The client address that address-keyed policies are decided for."""

    def __post_init__(self) -> None:
        self.actor.on_change = self._forget_plans
        self.address = address_of(self.trusted_proxies)

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
        by_address = [self.policies["general"]]
        if isinstance(extra, str):
            by_address.append(self.policies[extra])
        by_user = self.policies["api"] if api else None
        listed = by_address if by_user is None else [*by_address, by_user]
        items = ", ".join(policy_item(self.actor.applied(policy)) for policy in listed)
        return RoutePlan(tuple(by_address), by_user, (b"ratelimit-policy", items.encode()))

    async def enforce(
        self, plan: RoutePlan, policies: tuple[RatePolicy, ...], key: str, outcomes: list[Outcome]
    ) -> None:
        """Decide each policy for `key`, recording the outcomes; 429 at the first refusal.
        Strict policies are decided in Redis, the others in process."""
        for policy in policies:
            if policy.strict:
                decision = await self.actor.check(policy, key)
            else:
                decision = self.actor.check_local(policy, key)
            outcomes.append((policy, key, decision))
            if not decision.allowed:
                raise refused(plan.policy_field, outcomes)

    async def settle(self, outcomes: list[Outcome], status: int) -> None:
        """After the status is known: give back what skip-successful policies took."""
        if status >= 400:
            return
        for policy, key, decision in outcomes:
            if policy.skip_successful and decision.allowed:
                await self.actor.refund(policy, key)


def _load(outcome: Outcome) -> float:
    """How full the bucket is after the decision: refused first, then reset time / window."""
    policy, _, decision = outcome
    return decision.reset_after / policy.window_seconds if decision.allowed else float("inf")


def tightest_field(outcomes: list[Outcome]) -> Field:
    """The RateLimit field: the item of the policy closest to its limit (the first on a tie)."""
    policy, _, decision = max(outcomes, key=_load)
    return (b"ratelimit", remaining_item(policy, decision).encode())


def refused(policy_field: Field, outcomes: list[Outcome]) -> TooManyRequests:
    """The 429 for the last of `outcomes`, with every field of the route."""
    policy, _, decision = outcomes[-1]
    return TooManyRequests(
        f"Too many requests under the '{policy.name}' limit; retry later",
        headers={
            "RateLimit-Policy": policy_field[1].decode(),
            "RateLimit": remaining_item(policy, decision),
            "Retry-After": retry_after_header(decision),
        },
    )


def needs_settling(outcomes: list[Outcome]) -> bool:
    return any(policy.skip_successful for policy, _, _ in outcomes)
