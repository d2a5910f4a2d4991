"""JSON request bodies: every way the bytes can be wrong is a 400, never a 500.

Litestar decodes a body to plain values first and converts them to the handler's Struct
after; `JsonRequest.json` is that first step for every route. Refused: a body nested
deeper than MAX_JSON_DEPTH (before any recursive decoder sees it), bytes that are not
UTF-8 or not JSON, an object with a key given twice (JSON leaves it undefined;
decoders disagree on which one wins), and a value of another JSON type than its field's:
Litestar converts leniently (`0` or `"false"` for a boolean, `"5"` for a number), as query
strings need, so the body is first held to its type strictly here.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import msgspec
from litestar import Request
from litestar.types import Empty

from schemas.problem import FieldError
from server.errors import BadRequest, ValidationFailed
from server.http.validation import struct_field_errors

MAX_JSON_DEPTH = 32
MALFORMED_JSON = "Malformed JSON body"

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_decoder = msgspec.json.Decoder()


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in `raw`, brackets inside strings aside."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def decode_json_body(raw: bytes) -> Any:
    """The plain value of a JSON body, or BadRequest / ValidationFailed saying why not."""
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = _decoder.decode(raw)
    except UnicodeDecodeError:
        raise BadRequest(f"{MALFORMED_JSON}: not UTF-8") from None
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest(MALFORMED_JSON) from None
    if b"{" in raw:
        try:
            json.loads(raw, object_pairs_hook=_unique_keys, parse_int=str, parse_float=str)
        except _DuplicateKey as exc:
            raise ValidationFailed(
                "The request is invalid",
                details=[FieldError(field=exc.key, message="Duplicate field")],
            ) from None
    return value


def _whole_numbers_as_int(value: Any) -> Any:
    """`value` with `5.0` read as `5`: JSON Schema's `integer` includes it."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_whole_numbers_as_int(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers_as_int(item) for key, item in value.items()}
    return value


class JsonRequest(Request[Any, Any, Any]):
    """Litestar's Request, with the JSON body decoded by `decode_json_body`."""

    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                body = await self.body()
                value = decode_json_body(body or b"null")
                self._hold_to_type(value)
                self._json = self._connection_state.json = value
        return self._json

    def _hold_to_type(self, value: Any) -> None:
        """Refuse a body that only a lenient conversion accepts."""
        data = self.route_handler.parsed_fn_signature.parameters.get("data")
        if data is None:
            return
        value = _whole_numbers_as_int(value)
        try:
            msgspec.convert(value, data.annotation, strict=True)
        except TypeError:
            return  # not a type msgspec converts: Litestar's conversion decides
        except msgspec.ValidationError:
            try:
                msgspec.convert(value, data.annotation, strict=False)
            except msgspec.ValidationError:
                return  # invalid however read: Litestar's conversion reports it
            target = next(
                (
                    candidate
                    for candidate in (data.annotation, *data.args)
                    if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct)
                ),
                None,
            )
            details = struct_field_errors(value, target, "") if target is not None else []
            raise ValidationFailed("The request is invalid", details=details or None) from None
