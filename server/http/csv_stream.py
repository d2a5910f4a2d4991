"""`text/csv` attachments streamed from an async iterator of byte chunks, closed however the
response ends.

    return CsvStream(exports.enrollments_csv(...), filename="enrollments.csv")

The first chunk is read before the status line is sent, so a failure to start (no pooled
connection, a statement the database refuses) is still an ordinary problem answer. After
that, chunks are sent as they come; a failure truncates the body (the client sees a chunked
body without its end, never a complete-looking file). A client that disconnects cancels the
read at once. In every case the iterator is closed in a shielded scope, so what it holds (a
database connection) is released even when it was suspended between two chunks.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
from litestar import Request
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send, TypeEncodersMap

CSV_MEDIA_TYPE = "text/csv"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
_CLOSE_SECONDS = 10.0


def attachment(filename: str) -> str:
    """A `Content-Disposition` value; the name is reduced to characters safe unquoted."""
    return f'attachment; filename="{_UNSAFE_FILENAME.sub("_", filename)}"'


class _ClosingStreamingResponse(ASGIStreamingResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = self.iterator
        assert isinstance(chunks, AsyncIterator)
        try:
            first = b"" if self.is_head_response else await anext(chunks, b"")
            await self.start_response(send=send)
            if self.is_head_response:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_all, send, first, chunks, tg.cancel_scope)
                await self._listen_for_disconnect(cancel_scope=tg.cancel_scope, receive=receive)
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_SECONDS):
                    await close()

    async def _send_all(
        self,
        send: Send,
        first: bytes | str,
        chunks: AsyncIterator[bytes | str],
        done: anyio.CancelScope,
    ) -> None:
        await send(self._body(first))
        async for chunk in chunks:
            await send(self._body(chunk))
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        done.cancel()

    def _body(self, chunk: bytes | str) -> HTTPResponseBodyEvent:
        body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
        return {"type": "http.response.body", "body": body, "more_body": True}


class CsvStream(Stream):
    """A streamed CSV attachment named `filename`."""

    __slots__ = ("_chunks",)

    def __init__(self, content: AsyncIterator[bytes], *, filename: str) -> None:
        self._chunks = content
        super().__init__(
            content,
            media_type=CSV_MEDIA_TYPE,
            headers={
                "Content-Disposition": attachment(filename),
                "Cache-Control": "no-store",
            },
        )

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        return _ClosingStreamingResponse(
            background=self.background or background,
            cookies=itertools.chain(self.cookies, cookies or ()),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**(headers or {}), **self.headers},
            is_head_response=is_head_response,
            iterator=self._chunks,
            media_type=CSV_MEDIA_TYPE,
            status_code=self.status_code or status_code,
        )
