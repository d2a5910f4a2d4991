"""The before-send hook: security headers on every response, RateLimit fields where decided.

A hook rather than a middleware so that responses made before routing (404, 405) carry
the security headers too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from litestar.types import Message, Scope

from server.http.docs import DOCS_CONTENT_SECURITY_POLICY
from server.http.limits import RATE_LIMIT_FIELDS_KEY, RATE_LIMIT_SETTLE_KEY, RateLimits

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains; preload"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    # Granian sends `server: granian` unless the app sets one: a neutral value instead.
    (b"server", b"api"),
)

# The API reference page runs Swagger UI, served from this origin: a policy for it alone.
DOCS_PAGE_PATHS = frozenset({"/schema", "/schema/", "/schema/swagger"})
DOCS_PAGE_HEADERS = tuple(
    (name, DOCS_CONTENT_SECURITY_POLICY.encode() if name == b"content-security-policy" else value)
    for name, value in SECURITY_HEADERS
)

_STRIPPED = frozenset({b"server", b"x-powered-by"})


def response_fields_hook(
    rate_limits: RateLimits | None,
) -> Callable[[Message, Scope], Awaitable[None]]:
    """The hook, bound to this worker's rate limits (None when limiting is off)."""

    async def add_response_fields(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = [
            (name, value)
            for name, value in message.get("headers", ())
            if name.lower() not in _STRIPPED
        ]
        headers.extend(DOCS_PAGE_HEADERS if scope["path"] in DOCS_PAGE_PATHS else SECURITY_HEADERS)
        state = cast(dict[str, Any], scope)
        limit_fields = state.get(RATE_LIMIT_FIELDS_KEY)
        if limit_fields is not None and message["status"] != 429:
            headers.extend(limit_fields)
        message["headers"] = headers
        outcomes = state.get(RATE_LIMIT_SETTLE_KEY)
        if outcomes is not None and rate_limits is not None:
            await rate_limits.settle(outcomes, message["status"])

    return add_response_fields
