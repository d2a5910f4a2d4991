"""ETags for cached JSON bodies: a strong tag from the bytes, and 304 on `If-None-Match`.

    body = await cache.get_or_load(key, tags, load)
    return json_with_etag(body, request.headers.get("if-none-match"))

`If-None-Match` is compared weakly (RFC 9110 13.1.2): `W/` prefixes are ignored, a list
matches if any member does, and `*` matches any current body. Answers say
`Cache-Control: private, no-cache`: a client may keep the body but must revalidate it.
"""

from __future__ import annotations

import hashlib

from litestar import Response
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

CACHE_CONTROL = "private, no-cache"


def strong_etag(body: bytes) -> str:
    """A quoted strong entity tag: 128 bits of blake2b over the body."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` value names `etag` (so the answer is 304)."""
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for member in header.split(","):
        candidate = member.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def json_with_etag(
    body: bytes, if_none_match: str | None, *, media_type: str = "application/json"
) -> Response[bytes]:
    """200 with the body, or 304 without it; both with `ETag` and `Cache-Control`."""
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match_matches(if_none_match, etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, status_code=HTTP_200_OK, headers=headers, media_type=media_type)
