"""ASGI middleware refusing request bodies that are not JSON with 415."""

from __future__ import annotations

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from schemas.problem import Problem

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_ENCODER = msgspec.json.Encoder()


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


class JsonOnlyMiddleware:
    """A body sent with a media type other than JSON gets a 415 problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope.get("method") in _BODY_METHODS:
            headers = dict(scope["headers"])
            if _has_body(headers) and not _is_json(headers.get(b"content-type", b"")):
                await _reject(scope, send)
                return
        await self.app(scope, receive, send)


async def _reject(scope: Scope, send: Send) -> None:
    message = "Request bodies must be application/json"
    body = _ENCODER.encode(
        Problem(
            title="Unsupported Media Type",
            status=415,
            detail=message,
            error="Unsupported Media Type",
            message=message,
            instance=scope["path"],
        )
    )
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 415,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"accept-post", b"application/json"),
        ],
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)
