"""Field checks msgspec's `Meta` cannot express, attached to types as `Annotated` metadata.

    Timezone = Annotated[str, msgspec.Meta(max_length=64), Check(iana_zone)]

A check takes the decoded value and returns the value to keep (possibly normalised), or
raises ValueError with a message for the client. `ApiBody.__post_init__` runs the checks
of its fields, so they hold however a body is decoded; `server.http.validation` runs them
per field to report every invalid field.
"""

from __future__ import annotations

import datetime as dt
import functools
import types
import typing
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

# The latest calendar date anywhere on Earth is UTC+14's.
_LATEST_OFFSET = dt.timedelta(hours=14)


@dataclass(frozen=True, slots=True)
class Check:
    """`Annotated` metadata: a function run on the decoded value after msgspec's constraints."""

    apply: Callable[[Any], Any]


FieldChecks = tuple[tuple[type, tuple[Check, ...]], ...]
"""For each member of a field's type that has checks: its runtime type and its checks."""


def checks_of(annotation: Any) -> FieldChecks:
    """The checks in `annotation`, looking through unions (`T | None`, `T | UnsetType`)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return tuple(found for arg in typing.get_args(annotation) for found in checks_of(arg))
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        checks = tuple(item for item in metadata if isinstance(item, Check))
        inner = checks_of(base)
        if not checks:
            return inner
        runtime_type = typing.get_origin(base) or base
        return ((runtime_type, checks), *inner)
    return ()


def apply_checks(field_checks: FieldChecks, value: Any) -> Any:
    """`value` after the checks of the member of the field's type it is an instance of."""
    for runtime_type, checks in field_checks:
        if isinstance(value, runtime_type):
            for check in checks:
                value = check.apply(value)
    return value


@functools.cache
def _struct_checks(cls: type[msgspec.Struct]) -> tuple[tuple[str, FieldChecks], ...]:
    found = ((field.name, checks_of(field.type)) for field in msgspec.structs.fields(cls))
    return tuple((name, checks) for name, checks in found if checks)


def run_struct_checks(struct: msgspec.Struct) -> None:
    """Apply the checks of every field of `struct`, keeping what they return."""
    for name, field_checks in _struct_checks(type(struct)):
        value = getattr(struct, name)
        checked = apply_checks(field_checks, value)
        if checked is not value:
            setattr(struct, name, checked)


@functools.cache
def iana_zones() -> frozenset[str]:
    """Every zone name of the IANA time zone database this process has."""
    return frozenset(zoneinfo.available_timezones())


def iana_zone(name: str) -> str:
    """`name` if it is a zone of the IANA time zone database."""
    if name not in iana_zones():
        raise ValueError("Expected an IANA time zone name, such as Europe/Istanbul")
    return name


def not_in_future(day: dt.date) -> dt.date:
    """`day` unless it is later than today everywhere on Earth."""
    latest_today = (dt.datetime.now(dt.UTC) + _LATEST_OFFSET).date()
    if day > latest_today:
        raise ValueError("Expected a date that is not in the future")
    return day
