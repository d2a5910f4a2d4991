"""Tests of the open-loop HTTP/1.1 client's pure parts and of request mixes."""

import pytest

from benchmarks.opensim.http1 import HttpProtocolError, format_request, parse_head
from benchmarks.opensim.mix import MixEntry, MixPicker, parse_rotated_tokens, refresh_entry


def test_format_request() -> None:
    raw = format_request("PUT", "/a", "h:1", token="t", body=b'{"x":1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"PUT /a HTTP/1.1"
    assert b"Authorization: Bearer t" in head
    assert b"Content-Length: 7" in head
    assert body == b'{"x":1}'
    assert format_request("GET", "/", "h").endswith(b"\r\n\r\n")


def test_parse_head() -> None:
    assert parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx: y") == (200, 12, False, False)
    assert parse_head(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked") == (
        404,
        None,
        True,
        False,
    )
    assert parse_head(b"HTTP/1.1 503 x\r\nConnection: close\r\nContent-Length: 0")[3]
    assert parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0")[3]
    with pytest.raises(HttpProtocolError):
        parse_head(b"garbage")


def test_mix_picker_follows_weights() -> None:
    picker = MixPicker([MixEntry(3, "GET", "/a"), MixEntry(1, "GET", "/b")])
    counts = [0, 0]
    for i in range(1000):
        counts[picker.pick(i / 1000)] += 1
    assert counts == [750, 250]
    assert picker.pick(0.999999) == 1
    assert not picker.needs_refresh_tokens
    assert MixPicker([refresh_entry(1)]).needs_refresh_tokens
    with pytest.raises(ValueError, match="positive"):
        MixPicker([MixEntry(0, "GET", "/")])


def test_parse_rotated_tokens() -> None:
    assert parse_rotated_tokens(b'{"accessToken":"a","refreshToken":"r"}') == ("a", "r")
    assert parse_rotated_tokens(b'{"accessToken":"a"}') is None
    assert parse_rotated_tokens(b"not json") is None
    assert parse_rotated_tokens(b"[1]") is None
