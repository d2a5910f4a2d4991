"""A before-send hook adding the reference's security headers to every response.

A hook rather than a middleware so that responses made before routing (404,
405) carry them too.
"""

from __future__ import annotations

from litestar.types import Message, Scope

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

_STRIPPED = frozenset({b"server", b"x-powered-by"})


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = [
        (name, value) for name, value in message.get("headers", ()) if name.lower() not in _STRIPPED
    ]
    headers.extend(SECURITY_HEADERS)
    message["headers"] = headers
