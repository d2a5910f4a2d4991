"""The one msgspec base for API bodies, and the shared constraint aliases.

Patterns are written for both Python's `re` (msgspec) and ECMA-262 (the OpenAPI document):
`(?![\\s\\S])` ends a pattern rather than `$`, which in Python also matches before a final
line break.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.checks import run_struct_checks

_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_BUT_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
NO_CONTROL = rf"^(?![\s\S]*[{_CONTROL}])"
"""Pattern: no control character (C0, DEL, C1) anywhere, NUL included."""
NO_CONTROL_BUT_BREAKS = rf"^(?![\s\S]*[{_CONTROL_BUT_BREAKS}])"
"""Pattern: as NO_CONTROL, but tabs and line breaks are allowed."""
END = r"(?![\s\S])"

ZERO_FLOOR = {"minimum": 0}
"""`minimum: 0` for the OpenAPI document, which leaves out a bound of 0 on an optional field
or query parameter (Litestar tests the bound's truth); pass it beside `ge=0`."""
ZERO_FLOOR_SCHEMA = {"extra": ZERO_FLOOR}
"""ZERO_FLOOR as a `msgspec.Meta(extra_json_schema=...)`."""

Line = Annotated[str, msgspec.Meta(pattern=NO_CONTROL)]
"""One line of text: no control characters."""
Paragraphs = Annotated[str, msgspec.Meta(pattern=NO_CONTROL_BUT_BREAKS)]
"""Free text over several lines: tabs and line breaks, no other control characters."""
VisibleLine = Annotated[str, msgspec.Meta(pattern=NO_CONTROL + r"[\s\S]*\S")]
"""One line with at least one character that is not a space."""


class ApiBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Request and response bodies: camelCase on the wire, unknown fields refused.

    Fields annotated with a `schemas.checks.Check` are checked (and normalised) once
    decoded, whichever way the body is made.
    """

    def __post_init__(self) -> None:
        run_struct_checks(self)


class ApiResponse(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Response bodies: camelCase on the wire, unset fields left out."""


MAX_PAGE_SIZE = 100
