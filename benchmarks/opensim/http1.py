"""Minimal HTTP/1.1 keep-alive client on asyncio streams: one request at a time per connection.

Much cheaper per request than a general client: the request is one pre-formatted byte string, the
response is a status line, headers and a Content-Length (or chunked) body.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class HttpProtocolError(Exception):
    """The peer sent something this client does not understand."""


@dataclass(slots=True)
class Response:
    """Status, body and whether the server asked to close the connection."""

    status: int
    body: bytes
    close: bool


def format_request(
    method: str,
    path: str,
    host: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    extra_headers: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request as bytes (keep-alive; JSON content type when there is a body)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    raw = head.encode("latin-1") + extra_headers + b"\r\n"
    return raw + body if body is not None else raw


def parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Parse a response head: (status, content length or None, chunked, close)."""
    lines = head.split(b"\r\n")
    status_line = lines[0]
    if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
        raise HttpProtocolError(f"bad status line {status_line[:40]!r}")
    try:
        status = int(status_line[9:12])
    except ValueError as exc:
        raise HttpProtocolError(f"bad status line {status_line[:40]!r}") from exc
    length: int | None = None
    chunked = False
    close = status_line.startswith(b"HTTP/1.0")
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            low = value.strip().lower()
            close = low == b"close" or (close and low != b"keep-alive")
    return status, length, chunked, close


class Http1Connection:
    """One keep-alive connection; ``request`` must not be called concurrently."""

    __slots__ = ("_reader", "_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Http1Connection:
        """Connect to ``host:port``."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> Response:
        """Send one pre-formatted request and read its whole response."""
        self._writer.write(raw)
        transport = self._writer.transport
        if transport.get_write_buffer_size() > 65536:
            await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status, length, chunked, close = parse_head(head[:-4])
        if chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self._reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # body delimited by connection close
            body = await self._reader.read()
            close = True
        return Response(status=status, body=body, close=close)

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers (usually none) end with an empty line.
                while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        """Close the socket without waiting."""
        self._writer.close()
