"""RFC 9457 problem details, carrying the reference's `error` and `message`."""

from __future__ import annotations

import msgspec


class FieldError(msgspec.Struct, kw_only=True):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    error: str
    message: str
    details: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    instance: str | msgspec.UnsetType = msgspec.UNSET
    trace: str | msgspec.UnsetType = msgspec.UNSET
