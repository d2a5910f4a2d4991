"""The request gate: one ASGI middleware in front of every route handler.

In order: count the request in flight (a graceful stop waits for it), start the request's
database deadline, refuse an oversized
request target or header fields (414, 431) and a body that is not JSON (415), decide the
address-keyed rate limits, authenticate and apply the route's access rule (refusing a
cookie-authenticated write from another site: server/http/origin.py), decide the
user-keyed limits, and leave the RateLimit fields (and what
skip-successful limits must settle once the status is known) for the before-send hook.
One middleware on the raw scope rather than Litestar guards: a guard call copies the
route handler, which costs more than all of these checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from actors.audit import AuditRecord
from server.errors import UnsupportedMediaType
from server.http.access import IDENTITY_KEY, AccessRefused, Identity, authorize, bearer_token
from server.http.client import client_address
from server.http.limits import (
    RATE_LIMIT_FIELDS_KEY,
    RATE_LIMIT_SETTLE_KEY,
    Outcome,
    RateLimits,
    RoutePlan,
    needs_settling,
    tightest_field,
)
from server.http.origin import UNSAFE_METHODS, OriginCheck, cors_origins
from server.http.request_size import check_request_size

if TYPE_CHECKING:
    from server.runtime import Runtime

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _header_values(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def request_gate(runtime: Runtime) -> type:
    """The middleware class, bound to this worker's runtime."""
    in_flight = runtime.in_flight
    request_budget = runtime.database.request_budget
    origin_check = OriginCheck(cors_origins(runtime.settings))

    async def authorize_request(
        opt: dict[str, Any], token: str | None, headers: dict[bytes, bytes], method: str
    ) -> Identity | None:
        identity = await authorize(runtime, opt, token)
        from_cookie = b"authorization" not in headers
        if identity is not None and from_cookie and method in UNSAFE_METHODS:
            origin_check.check(headers)
        return identity

    class RequestGate:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await self.app(scope, receive, send)
                return
            in_flight.count += 1
            try:
                with request_budget():
                    await self._gate(scope, receive, send)
            finally:
                in_flight.count -= 1

        async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
            check_request_size(scope)
            headers = _header_values(scope)
            method = str(scope.get("method", "GET"))
            if (
                method in _BODY_METHODS
                and _has_body(headers)
                and not _is_json(headers.get(b"content-type", b""))
            ):
                raise UnsupportedMediaType(
                    "Request bodies must be application/json",
                    headers={"Accept-Post": "application/json"},
                )
            handler = scope["route_handler"]
            opt: dict[str, Any] = handler.opt
            token = bearer_token(headers.get(b"authorization"), headers.get(b"cookie"))
            limits = runtime.rate_limits
            plan = (
                None if limits is None else limits.plan(handler, scope["path"].startswith("/api/"))
            )
            try:
                if limits is None or plan is None:
                    identity = await authorize_request(opt, token, headers, method)
                else:
                    identity = await self._limited(scope, headers, limits, plan, opt, token, method)
            except AccessRefused as refused:
                _audit_refusal(runtime, scope, headers, refused)
                raise
            if identity is not None:
                scope[IDENTITY_KEY] = identity  # type: ignore[literal-required]
            await self.app(scope, receive, send)

        async def _limited(
            self,
            scope: Scope,
            headers: dict[bytes, bytes],
            limits: RateLimits,
            plan: RoutePlan,
            opt: dict[str, Any],
            token: str | None,
            method: str,
        ) -> Identity | None:
            """The address-keyed limits, authentication, then the user-keyed limit."""
            address = limits.address(scope, headers)
            outcomes: list[Outcome] = []
            await limits.enforce(plan, plan.by_address, address, outcomes)
            identity = await authorize_request(opt, token, headers, method)
            if plan.by_user is not None:
                key = address if identity is None else identity.user_id
                await limits.enforce(plan, (plan.by_user,), key, outcomes)
            scope[RATE_LIMIT_FIELDS_KEY] = (  # type: ignore[literal-required]
                plan.policy_field,
                tightest_field(outcomes),
            )
            if needs_settling(outcomes):
                scope[RATE_LIMIT_SETTLE_KEY] = outcomes  # type: ignore[literal-required]
            return identity

    return RequestGate


def _audit_refusal(
    runtime: Runtime, scope: Scope, headers: dict[bytes, bytes], refused: AccessRefused
) -> None:
    identity = refused.identity
    runtime.audit.submit(
        AuditRecord(
            action="access.denied",
            outcome="denied",
            actor_id=identity.user_id if identity is not None else None,
            address=client_address(scope, headers, runtime.settings.trusted_proxies),
            target_type="route",
            target_id=f"{scope.get('method', 'GET')} {scope.get('path_template', scope['path'])}",
            details={"role": str(identity.role) if identity is not None else None},
        )
    )


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers
