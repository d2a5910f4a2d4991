"""Response compression (brotli, gzip fallback) that costs nothing to clients not asking for it.

Litestar's middleware parses every request header into a multidict just to read
Accept-Encoding; this one scans the raw header list and steps aside when it is absent.
"""

from __future__ import annotations

from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Receive, Scope, Send


class CompressionWhenAsked(CompressionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        accept = b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value
                break
        if not accept:
            await self.app(scope, receive, send)
            return
        accepted = accept.decode("latin-1")
        encoding = self.config.compression_facade.encoding
        if encoding not in accepted:
            if not (self.config.gzip_fallback and CompressionEncoding.GZIP in accepted):
                await self.app(scope, receive, send)
                return
            encoding = CompressionEncoding.GZIP
        wrapped = self.create_compression_send_wrapper(
            send=send, compression_encoding=encoding, scope=scope
        )
        await self.app(scope, receive, wrapped)
