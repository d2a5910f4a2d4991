"""JSON request bodies: depth, encoding and duplicate keys decide a 400 before any decoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import BadRequest, ValidationFailed
from server.http.json_body import MAX_JSON_DEPTH, decode_json_body, json_depth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_depth_is_the_nesting_of_the_value(value: object) -> None:
    raw = json.dumps(value).encode()
    assert json_depth(raw) == nesting(value)


@given(json_values)
def test_valid_bodies_decode_to_their_value(value: object) -> None:
    assert decode_json_body(json.dumps(value).encode()) == value


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b"[" * 100_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    ],
)
def test_too_deep_is_refused_before_decoding(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="nested deeper"):
        decode_json_body(raw)


def test_the_depth_bound_itself_is_accepted() -> None:
    raw = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_depth(raw) == MAX_JSON_DEPTH
    decode_json_body(raw)


def test_brackets_and_escaped_quotes_in_strings_do_not_count() -> None:
    raw = json.dumps({"a": '[[[{{{\\"]]]' * 50, "b": ["\\", "\\\\["]}).encode()
    assert json_depth(raw) == 2
    decode_json_body(raw)


@pytest.mark.parametrize(
    "raw", [b'"\xff"', b'{"a": "\xed\xa0\x80"}', b"\xfe\xff{}", b'{"a": "\\ud800"}']
)
def test_bytes_that_are_not_utf8_are_malformed(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="Malformed JSON body"):
        decode_json_body(raw)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b"NaN", b"{'a': 1}", b"1 2"])
def test_what_is_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="Malformed JSON body"):
        decode_json_body(raw)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": {"b": 1, "c": 2, "b": 3}}', "b"),
        (b'[{"x": 1}, {"y": 1, "y": 1}]', "y"),
        (b'{"\\u0061": 1, "a": 2}', "a"),
    ],
)
def test_duplicate_keys_are_refused(raw: bytes, key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_json_body(raw)
    assert caught.value.details is not None
    assert [d.field for d in caught.value.details] == [key]


def test_long_numbers_do_not_break_the_duplicate_check() -> None:
    raw = b'{"a": 1.' + b"9" * 5000 + b', "b": ' + b"9" * 300 + b"}"
    assert decode_json_body(raw)["a"] == 2.0
