"""The request gate: one ASGI middleware in front of every route handler.

In order: count the request in flight (a graceful stop waits for it), refuse an oversized
request target or header fields (414, 431) and a body that is not JSON (415), decide the
address-keyed rate limits, authenticate and apply the route's access rule, decide the
user-keyed limits, and leave the RateLimit fields (and what
skip-successful limits must settle once the status is known) for the before-send hook.
One middleware on the raw scope rather than Litestar guards: a guard call copies the
route handler, which costs more than all of these checks.

With telemetry on, the gate also measures (`http.server.request.duration` by route template,
in the runtime's `RequestDurations`), opens the request's span when it is sampled (see
`server/telemetry/tracing.py`), answers `traceresponse` when the request has a trace, and
sets the request's log context, which the access line (and every other line) reads.
"""

from __future__ import annotations

import itertools
import logging
import time
from contextvars import Token
from random import getrandbits
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode

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
from server.telemetry.logs import RequestLog, request_log
from server.telemetry.tracing import LOW_64, parse_traceparent, traceresponse

if TYPE_CHECKING:
    from server.runtime import Runtime

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
access_logger = logging.getLogger("sevenp.access")


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
    telemetry = runtime.telemetry
    measured = telemetry.enabled
    requests = telemetry.requests
    tracer = telemetry.tracer
    ids = telemetry.ids
    root_bound = telemetry.root_bound
    access_log = runtime.settings.access_logged
    # Every failed, slow or traced request is logged; of the rest, this share.
    access_sample = int(runtime.settings.access_log_sample * (1 << 32))
    access_slow = runtime.settings.access_log_slow_ms / 1000
    numbers = itertools.count(1)
    RequestLog.prefix = runtime.instance_id
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
                    if measured:
                        await self._measured(scope, receive, send)
                    else:
                        await self._gate(scope, receive, send, _header_values(scope))
            finally:
                in_flight.count -= 1

        async def _measured(self, scope: Scope, receive: Receive, send: Send) -> None:
            started = time.perf_counter()
            headers = _header_values(scope)
            method: str = scope.get("method", "GET")  # type: ignore[assignment]
            route: str = scope.get("path_template", "")
            entry = RequestLog(next(numbers), method, route)
            log_token = request_log.set(entry)
            span, context_token, header = self._trace(scope, headers, method, route, entry)
            status = 500
            error_type: str | None = None

            async def send_measured(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if header is not None:
                        message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            try:
                await self._gate(scope, receive, send_measured, headers)
            except BaseException as exc:
                status = _status_of(exc)
                if status >= 500:
                    error_type = type(exc).__qualname__
                if span is not None:
                    span.record_exception(exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                if status >= 500 and error_type is None:
                    error_type = str(status)
                requests.record(method, route, status, error_type, elapsed)
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                    if error_type is not None:
                        span.set_attribute("error.type", error_type)
                        span.set_status(StatusCode.ERROR)
                    span.end()
                if context_token is not None:
                    otel_context.detach(context_token)
                if access_log and (
                    status >= 400
                    or elapsed >= access_slow
                    or span is not None
                    or getrandbits(32) < access_sample
                ):
                    entry.status, entry.duration = status, elapsed
                    access_logger.info("%s %s %d", method, route, status)
                request_log.reset(log_token)

        def _trace(
            self,
            scope: Scope,
            headers: dict[bytes, bytes],
            method: str,
            route: str,
            entry: RequestLog,
        ) -> tuple[Span | None, Token[Context] | None, tuple[bytes, bytes] | None]:
            """The request's span if it is sampled, its context token, `traceresponse`."""
            if tracer is None:
                return None, None, None
            field = headers.get(b"traceparent")
            parent = None if field is None else parse_traceparent(field, headers.get(b"tracestate"))
            if parent is not None and not parent.sampled:
                entry.trace_id = parent.trace_id
                return (
                    None,
                    None,
                    (b"traceresponse", traceresponse(parent.trace_id, getrandbits(64), False)),
                )
            if parent is None:
                trace_id = getrandbits(128)
                if (trace_id & LOW_64) >= root_bound or ids is None:
                    return None, None, None
                ids.pending = trace_id
            span = tracer.start_span(
                f"{method} {route}",
                context=None if parent is None else parent.context(),
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": scope["path"],
                    "url.scheme": "http",
                },
            )
            span_context = span.get_span_context()
            if not span.is_recording():
                return None, None, None
            entry.trace_id = span_context.trace_id
            token = otel_context.attach(trace.set_span_in_context(span))
            return (
                span,
                token,
                (
                    b"traceresponse",
                    traceresponse(span_context.trace_id, span_context.span_id, True),
                ),
            )

        async def _gate(
            self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
        ) -> None:
            check_request_size(scope)
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
                if measured:
                    entry = request_log.get()
                    if entry is not None:
                        entry.user_id = identity.user_id
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
            address=client_address(scope, runtime.settings.trusted_proxies),
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


def _status_of(exc: BaseException) -> int:
    """The status the exception handlers answer `exc` with."""
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    return status if isinstance(status, int) else 500
