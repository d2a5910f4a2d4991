"""Integer query parameters take digits only, date-time ones an RFC 3339 date-time.

Litestar converts query strings leniently, so `limit=1e3` and `limit=1.0` would reach the
handler as 1000 and 1, and `since=0.5` as a Unix time. This before-request hook refuses
such values for every `int` and `datetime` query parameter of every route, before the
conversion; which parameters those are is worked out once per route handler.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from typing import Any

from litestar import Request
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg

from schemas.problem import FieldError
from server.errors import ValidationFailed

_FORMS: dict[type, tuple[re.Pattern[str], str]] = {
    int: (re.compile(r"-?[0-9]+"), "Expected an integer"),
    # The date, then what msgspec checks: never a number read as a Unix time.
    dt.datetime: (
        re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt].*"),
        "Expected an RFC 3339 date-time",
    ),
}
_names_by_handler: dict[HTTPRouteHandler, tuple[tuple[str, str, type], ...]] = {}


def _strict_type(annotation: Any) -> type | None:
    """`int` or `datetime` when `annotation` is one of them (optional or annotated)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _strict_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Union or isinstance(annotation, types.UnionType):
        members = {
            _strict_type(arg) for arg in typing.get_args(annotation) if arg is not type(None)
        }
        return members.pop() if len(members) == 1 else None
    return annotation if annotation in _FORMS else None


def integer_query_names(handler: HTTPRouteHandler) -> tuple[tuple[str, str, type], ...]:
    """(parameter name, query key, type) of `handler`'s `int` and `datetime` parameters, as
    Litestar reads them."""
    names = _names_by_handler.get(handler)
    if names is None:
        found = []
        for name, field in handler.parsed_fn_signature.parameters.items():
            kwarg = field.kwarg_definition
            kind = _strict_type(field.annotation)
            if field.is_di_field or kind is None:
                continue
            if isinstance(kwarg, ParameterKwarg):
                if kwarg.param_type is ParamType.QUERY:
                    found.append((name, kwarg.name or name, kind))
            elif kwarg is None:
                found.append((name, name, kind))
        names = _names_by_handler[handler] = tuple(found)
    return names


async def strict_query_integers(request: Request[Any, Any, Any]) -> None:
    """Before-request hook: a ValidationFailed naming every query value not in its form."""
    names = integer_query_names(request.route_handler)
    if not names or not request.scope["query_string"]:
        return
    query = request.query_params
    path_parameters = request.scope["path_params"]
    errors = [
        FieldError(field=key, message=_FORMS[kind][1])
        for name, key, kind in names
        if name not in path_parameters
        and any(not _FORMS[kind][0].fullmatch(value) for value in query.getall(key, []))
    ]
    if errors:
        raise ValidationFailed("The request is invalid", details=errors)
