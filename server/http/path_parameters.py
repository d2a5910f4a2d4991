"""Which path parameters of a request failed to parse, for the 400 that reports them.

Litestar's router answers a path whose `{id:uuid}` segment does not parse as if no route
matched; API.md wants a 400 naming the parameter. Only runs on that error path.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from schemas.problem import FieldError

_KINDS: dict[Any, str] = {uuid.UUID: "a UUID", int: "an integer", dt.date: "a date"}


def malformed_path_parameters(routes: Iterable[Any], path: str) -> list[FieldError]:
    """The parameters of the first route whose static segments match `path` that do not parse."""
    segments = path.strip("/").split("/")
    for route in routes:
        components = route.path_components
        if len(components) != len(segments):
            continue
        errors: list[FieldError] = []
        for component, segment in zip(components, segments, strict=True):
            if isinstance(component, str):
                if component != segment:
                    break
            elif component.parser is not None and not _parses(component.parser, segment):
                errors.append(
                    FieldError(
                        field=_camel(component.name),
                        message=f"Expected {_KINDS.get(component.type, component.type.__name__)}",
                    )
                )
        else:
            if errors:
                return errors
    return []


def _parses(parser: Any, segment: str) -> bool:
    try:
        parser(segment)
    except ValueError:
        return False
    return True


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)
