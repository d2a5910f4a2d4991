"""Rate limits on routes: which policies apply, the decisions, and the response fields.

Every route gets the `general` policy per client address and, under `/api`, the `api` policy
per user (or address when anonymous); a route may add one more with `opt={"rate_limit": NAME}`
or opt out with `opt={"rate_limit": False}` (health probes). Address-keyed policies are
decided before authentication (so unauthenticated floods count too), `api` after it. A
limited request gets a 429 problem with Retry-After; every response of a limited route
carries RateLimit-Policy (all its policies) and RateLimit (the one closest to its limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import NS_PER_SECOND, Decision, backlog_decision, interval_ticks
from actors.ratelimit.headers import policy_item, remaining_item, retry_after_header
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests

RATE_LIMIT_FIELDS_KEY = "sevenp.rate_limit_fields"
RATE_LIMIT_SETTLE_KEY = "sevenp.rate_limit_settle"

Outcome = tuple[RatePolicy, str, int]
"""A policy, the key it was decided for, and `GcraStore.admit`'s answer (< 0: refused)."""


def _as_admitted(decision: Decision) -> int:
    if decision.allowed:
        return round(decision.reset_after * NS_PER_SECOND)
    return -round(decision.retry_after * NS_PER_SECOND) - 1


@dataclass(slots=True)
class RateLimits:
    actor: RateLimitActor
    policies: dict[str, RatePolicy]
    trusted_proxies: tuple[str, ...]
    _by_route: dict[tuple[int, bool, bool], tuple[RatePolicy, ...]] = field(default_factory=dict)

    def for_route(self, opt: dict[str, Any], api: bool, *, by_user: bool) -> tuple[RatePolicy, ...]:
        """Address-keyed policies (by_user False) or the user-keyed one (by_user True)."""
        cache_key = (id(opt), api, by_user)
        chosen = self._by_route.get(cache_key)
        if chosen is None:
            chosen = self._by_route[cache_key] = self._choose(opt, api, by_user=by_user)
        return chosen

    def _choose(self, opt: dict[str, Any], api: bool, *, by_user: bool) -> tuple[RatePolicy, ...]:
        extra = opt.get("rate_limit")
        if extra is False:
            return ()
        if by_user:
            return (self.policies["api"],) if api else ()
        if isinstance(extra, str):
            return (self.policies["general"], self.policies[extra])
        return (self.policies["general"],)

    async def enforce(
        self, policies: tuple[RatePolicy, ...], key: str, outcomes: list[Outcome]
    ) -> None:
        """Decide each policy for `key`, recording the outcomes; 429 at the first refusal."""
        actor = self.actor
        for policy in policies:
            if policy.strict:
                admitted = _as_admitted(await actor.check(policy, key))
            else:
                admitted = actor.admit_local(policy, key)
            outcomes.append((policy, key, admitted))
            if admitted < 0:
                headers = response_fields(outcomes)
                headers["Retry-After"] = retry_after_header(backlog_decision(policy, admitted))
                raise TooManyRequests(
                    f"Too many requests under the '{policy.name}' limit; retry later",
                    headers=headers,
                )

    async def settle(self, outcomes: list[Outcome], status: int) -> None:
        """After the status is known: give back what skip-successful policies took."""
        if status >= 400:
            return
        for policy, key, admitted in outcomes:
            if policy.skip_successful and admitted >= 0:
                await self.actor.refund(policy, key)


_POLICY_FIELDS: dict[tuple[str, ...], str] = {}
_SHAPES: dict[str, tuple[RatePolicy, str, int, int]] = {}


def response_fields(outcomes: list[Outcome]) -> dict[str, str]:
    """All policies in RateLimit-Policy; in RateLimit, the one closest to its limit."""
    names = tuple(policy.name for policy, _, _ in outcomes)
    listed = _POLICY_FIELDS.get(names)
    if listed is None:
        listed = _POLICY_FIELDS[names] = ", ".join(policy_item(p) for p, _, _ in outcomes)
    tightest, _, admitted = outcomes[0]
    if len(outcomes) > 1:
        tightest, admitted = max(((p, a) for p, _, a in outcomes), key=_load)
    return {"RateLimit-Policy": listed, "RateLimit": _remaining_field(tightest, admitted)}


def _remaining_field(policy: RatePolicy, admitted: int) -> str:
    """`remaining_item` of the decision `admitted` stands for, without building it."""
    if admitted < 0:
        return remaining_item(policy, backlog_decision(policy, admitted))
    shape = _SHAPES.get(policy.name)
    if shape is None or shape[0] is not policy:
        interval = interval_ticks(policy, NS_PER_SECOND)
        name = policy_item(policy).split(";", 1)[0]
        shape = _SHAPES[policy.name] = (policy, name, interval, interval * policy.limit)
    _, name, interval, burst = shape
    remaining = min(policy.limit, (burst - admitted) // interval)
    return f"{name};r={remaining};t={-(-admitted // NS_PER_SECOND)}"


def _load(decided: tuple[RatePolicy, int]) -> float:
    """How full a bucket is after the decision: refused ones first, then by backlog / burst."""
    policy, admitted = decided
    if admitted < 0:
        return math.inf
    return admitted / (policy.window_seconds * NS_PER_SECOND)


def needs_settling(outcomes: list[Outcome]) -> bool:
    return any(policy.skip_successful for policy, _, _ in outcomes)
