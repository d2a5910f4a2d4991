"""Bounds on the request line and header fields, in two layers.

The app refuses a request target over MAX_TARGET_BYTES (414) or header fields over
MAX_HEADER_BYTES in all (431) with a problem+json that carries the security headers.
Granian's HTTP/1 read buffer, HTTP1_BUFFER_BYTES, is the outer bound: past it (or for
a target over 64 KiB) Granian answers 431 or 414 itself and closes the connection, and
that bare answer cannot carry headers, since the app never sees the request.
"""

from __future__ import annotations

from litestar.types import Scope

from server.errors import HeaderFieldsTooLarge, UriTooLong

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
HTTP1_BUFFER_BYTES = 64 * 1024


def check_request_size(scope: Scope) -> None:
    """Raise UriTooLong or HeaderFieldsTooLarge for a request over the bounds."""
    if len(scope.get("raw_path", b"")) + len(scope["query_string"]) > MAX_TARGET_BYTES:
        raise UriTooLong(f"The request target is longer than {MAX_TARGET_BYTES} bytes")
    size = 0
    for name, value in scope["headers"]:
        size += len(name) + len(value)
    if size > MAX_HEADER_BYTES:
        raise HeaderFieldsTooLarge(f"The header fields exceed {MAX_HEADER_BYTES} bytes in all")
