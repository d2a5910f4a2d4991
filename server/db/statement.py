"""Named SQL statements: literal text with server-bound parameters, and a name to report.

The name (`area.action`) is what the slow-query log and the telemetry show, so a
statement is recognisable without printing its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import LiteralString


@dataclass(frozen=True, slots=True)
class Statement:
    name: str
    sql: LiteralString
    prepare: bool | None = None
    """True for hot statements (prepared on each connection at first use)."""
