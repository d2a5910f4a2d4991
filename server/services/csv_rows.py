"""Rows to CSV bytes, a batch at a time, safe to open in a spreadsheet.

RFC 4180 through Python's `csv` writer (CRLF line ends, fields quoted when they hold a comma,
a quote or a line break). A text cell that a spreadsheet would read as a formula (starting
with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (OWASP's CSV
injection guard); numbers are written as numbers, so a negative score stays one. Times are
ISO 8601 in UTC, booleans `true`/`false`, NULL an empty cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence

FORMULA_TRIGGERS = frozenset("=+-@\t\r")


def guarded(text: str) -> str:
    """`text`, with a leading `'` when a spreadsheet would evaluate it."""
    if text and text[0] in FORMULA_TRIGGERS:
        return "'" + text
    return text


def cell(value: object) -> object:
    """A database value as the CSV writer should write it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return guarded(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class CsvEncoder:
    """Encodes rows into one small reused buffer; each call returns the bytes of its rows."""

    __slots__ = ("_buffer", "_writer")

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def encode(self, rows: Iterable[Sequence[object]]) -> bytes:
        writer = self._writer
        for row in rows:
            writer.writerow([cell(value) for value in row])
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()


async def csv_chunks(
    header: Sequence[str], batches: AsyncIterable[Sequence[Sequence[object]]]
) -> AsyncGenerator[bytes, None]:
    """The header line at once, then one chunk per batch of rows."""
    encoder = CsvEncoder()
    yield encoder.encode([header])
    async for batch in batches:
        if batch:
            yield encoder.encode(batch)
