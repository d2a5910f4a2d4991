"""Rate limits on routes: which policies apply, the guard deciding, and the response fields.

Every route gets the `general` policy per client address and, under `/api`, the `api` policy
per user (or address when anonymous); a route may add one more with `opt={"rate_limit": NAME}`
or opt out with `opt={"rate_limit": False}` (health probes). A limited request gets a 429
problem with Retry-After; every limited route's response carries RateLimit-Policy and RateLimit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Message, Scope

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import Decision
from actors.ratelimit.headers import rate_limit_headers, retry_after_header
from actors.ratelimit.policy import RatePolicy
from server.errors import TooManyRequests
from server.http.access import IDENTITY_KEY, Identity
from server.http.client import client_address

_DECISIONS_KEY = "sevenp.rate_limits"


@dataclass(frozen=True, slots=True)
class RateLimits:
    actor: RateLimitActor
    policies: dict[str, RatePolicy]
    trusted_proxies: tuple[str, ...]

    def for_route(self, opt: dict[str, Any], path: str, *, by_user: bool) -> list[RatePolicy]:
        """Address-keyed policies run before authentication, user-keyed ones after it."""
        extra = opt.get("rate_limit")
        if extra is False:
            return []
        if by_user:
            return [self.policies["api"]] if path.startswith("/api/") else []
        chosen = [self.policies["general"]]
        if isinstance(extra, str):
            chosen.append(self.policies[extra])
        return chosen


async def limit_by_address(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard before `authorize`: `general` and the route's own policy, per client address."""
    await _enforce(connection, route_handler, by_user=False)


async def limit_by_user(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """Guard after `authorize`: `api`, per user when signed in, else per client address."""
    await _enforce(connection, route_handler, by_user=True)


async def _enforce(
    connection: ASGIConnection[Any, Any, Any, Any],
    route_handler: BaseRouteHandler,
    *,
    by_user: bool,
) -> None:
    limits: RateLimits | None = connection.app.state.runtime.rate_limits
    if limits is None:
        return
    policies = limits.for_route(route_handler.opt, connection.scope["path"], by_user=by_user)
    if not policies:
        return
    scope = cast(dict[str, Any], connection.scope)
    identity: Identity | None = scope.get(IDENTITY_KEY) if by_user else None
    outcomes: list[tuple[RatePolicy, str, Decision]] = scope.setdefault(_DECISIONS_KEY, [])
    for policy in policies:
        if identity is not None:
            key = f"u:{identity.user_id}"
        else:
            key = f"ip:{client_address(connection, limits.trusted_proxies)}"
        decision = await limits.actor.check(policy, key)
        outcomes.append((policy, key, decision))
        if not decision.allowed:
            headers = _fields(outcomes)
            headers["Retry-After"] = retry_after_header(decision)
            raise TooManyRequests(
                f"Too many requests under the '{policy.name}' limit; retry later",
                headers=headers,
            )


def _fields(outcomes: list[tuple[RatePolicy, str, Decision]]) -> dict[str, str]:
    """All policies in RateLimit-Policy; in RateLimit, the one closest to its limit."""
    per_policy = [rate_limit_headers(policy, decision) for policy, _, decision in outcomes]
    tightest = min(
        range(len(outcomes)),
        key=lambda i: (outcomes[i][2].allowed, outcomes[i][2].remaining / outcomes[i][2].limit),
    )
    return {
        "RateLimit-Policy": ", ".join(h["RateLimit-Policy"] for h in per_policy),
        "RateLimit": per_policy[tightest]["RateLimit"],
    }


async def add_rate_limit_fields(message: Message, scope: Scope) -> None:
    """Before send: the RateLimit fields, and skip-successful refunds once the status is known."""
    if message["type"] != "http.response.start":
        return
    outcomes = cast(dict[str, Any], scope).get(_DECISIONS_KEY)
    if not outcomes:
        return
    status = message["status"]
    headers = list(message.get("headers", ()))
    if status != 429:
        headers.extend(
            (name.lower().encode(), value.encode()) for name, value in _fields(outcomes).items()
        )
        message["headers"] = headers
    if status < 400:
        limits: RateLimits = scope["app"].state.runtime.rate_limits
        for policy, key, decision in outcomes:
            if policy.skip_successful and decision.allowed:
                await limits.actor.refund(policy, key)
