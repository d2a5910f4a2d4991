"""Every invalid field of a JSON body, not just the first one msgspec stops at.

msgspec's own constraints and the fields' `schemas.checks.Check`s are both reported.

Only runs on the error path: a valid body is decoded once by Litestar.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec

from schemas.checks import apply_checks, checks_of
from schemas.problem import FieldError


def body_field_errors(raw: bytes, target: type[msgspec.Struct]) -> list[FieldError] | None:
    """Field errors of `raw` against `target`; None when `raw` is not JSON at all."""
    try:
        payload = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return struct_field_errors(payload, target, "")


def struct_field_errors(
    payload: Any, target: type[msgspec.Struct], prefix: str
) -> list[FieldError]:
    if not isinstance(payload, dict):
        return [FieldError(field=prefix or "body", message="Expected a JSON object")]
    fields = {f.encode_name: f for f in msgspec.structs.fields(target)}
    errors = [
        FieldError(field=_join(prefix, key), message="Unknown field")
        for key in payload
        if key not in fields
    ]
    for name, field in fields.items():
        path = _join(prefix, name)
        if name not in payload:
            if field.required:
                errors.append(FieldError(field=path, message="Field required"))
            continue
        value = payload[name]
        nested = _struct_in(field.type)
        if nested is not None and isinstance(value, dict):
            errors.extend(struct_field_errors(value, nested, path))
            continue
        try:
            apply_checks(checks_of(field.type), msgspec.convert(value, field.type))
        except msgspec.ValidationError as exc:
            errors.append(FieldError(field=path, message=str(exc).split(" - at ", 1)[0]))
        except ValueError as exc:
            errors.append(FieldError(field=path, message=str(exc)))
    return errors


def _struct_in(annotation: Any) -> type[msgspec.Struct] | None:
    candidates = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
