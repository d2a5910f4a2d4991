"""ETag helpers: the tag, If-None-Match matching, and 200/304 answers through a real app."""

from __future__ import annotations

import pytest
from litestar import Litestar, Request, Response, get
from litestar.testing import TestClient

from server.http.etag import CACHE_CONTROL, if_none_match_matches, json_with_etag, strong_etag

BODY = b'{"id":"123","title":"Algebra"}'


def test_the_tag_is_strong_short_and_follows_the_bytes() -> None:
    etag = strong_etag(BODY)
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) == 34
    assert etag == strong_etag(bytes(BODY))
    assert etag != strong_etag(BODY + b" ")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        ("ETAG", True),
        ("W/ETAG", True),
        ('"other", ETAG', True),
        ('"other",W/ETAG ,"third"', True),
        ('"other"', False),
        ('W/"other", "third"', False),
        ("ETAG-ish", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    etag = strong_etag(BODY)
    value = None if header is None else header.replace("ETAG", etag)
    assert if_none_match_matches(value, etag) is matches


@get("/thing", sync_to_thread=False)
def thing(request: Request[object, object, object]) -> Response[bytes]:
    return json_with_etag(BODY, request.headers.get("if-none-match"))


def test_a_matching_request_gets_304_without_a_body() -> None:
    with TestClient(Litestar([thing])) as client:
        first = client.get("/thing")
        assert first.status_code == 200
        assert first.content == BODY
        assert first.headers["content-type"] == "application/json"
        assert first.headers["etag"] == strong_etag(BODY)
        assert first.headers["cache-control"] == CACHE_CONTROL

        again = client.get("/thing", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == CACHE_CONTROL

        stale = client.get("/thing", headers={"If-None-Match": '"stale"'})
        assert stale.status_code == 200
        assert stale.content == BODY
