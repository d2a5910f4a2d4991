"""Integer query parameters take digits only.

Litestar converts query strings leniently, so `limit=1e3` and `limit=1.0` would reach the
handler as 1000 and 1. This before-request hook refuses such values for every `int`
query parameter of every route, before the conversion; which parameters those are is
worked out once per route handler.
"""

from __future__ import annotations

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

_INTEGER = re.compile(r"-?[0-9]+")
_names_by_handler: dict[HTTPRouteHandler, tuple[tuple[str, str], ...]] = {}


def _is_integer(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_integer(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Union or isinstance(annotation, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return bool(members) and all(_is_integer(arg) for arg in members)
    return annotation is int


def integer_query_names(handler: HTTPRouteHandler) -> tuple[tuple[str, str], ...]:
    """(parameter name, query key) of `handler`'s `int` parameters, as Litestar reads them."""
    names = _names_by_handler.get(handler)
    if names is None:
        found = []
        for name, field in handler.parsed_fn_signature.parameters.items():
            kwarg = field.kwarg_definition
            if field.is_di_field or not _is_integer(field.annotation):
                continue
            if isinstance(kwarg, ParameterKwarg):
                if kwarg.param_type is ParamType.QUERY:
                    found.append((name, kwarg.name or name))
            elif kwarg is None:
                found.append((name, name))
        names = _names_by_handler[handler] = tuple(found)
    return names


async def strict_query_integers(request: Request[Any, Any, Any]) -> None:
    """Before-request hook: a ValidationFailed naming every non-integer `int` query value."""
    names = integer_query_names(request.route_handler)
    if not names or not request.scope["query_string"]:
        return
    query = request.query_params
    path_parameters = request.scope["path_params"]
    errors = [
        FieldError(field=key, message="Expected an integer")
        for name, key in names
        if name not in path_parameters
        and any(not _INTEGER.fullmatch(value) for value in query.getall(key, []))
    ]
    if errors:
        raise ValidationFailed("The request is invalid", details=errors)
