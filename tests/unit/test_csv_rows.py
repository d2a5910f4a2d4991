"""CSV batches: RFC 4180 quoting, the formula-injection guard, how values are written."""

from __future__ import annotations

import csv
import datetime as dt
import io

from hypothesis import given
from hypothesis import strategies as st

from server.services.csv_rows import CsvEncoder, cell, csv_chunks, guarded


def _parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def test_cells_a_spreadsheet_would_evaluate_get_a_leading_quote() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert guarded(text) == "'" + text
    for text in ("", "plain", "1-1", "a=b", " =1", "'=1"):
        assert guarded(text) == text


def test_numbers_stay_numbers_and_other_values_are_written_plainly() -> None:
    assert cell(-3.5) == -3.5
    assert cell(-2) == -2
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(False) == "false"
    paris = dt.timezone(dt.timedelta(hours=2))
    assert cell(dt.datetime(2025, 3, 1, 12, 0, tzinfo=paris)) == "2025-03-01T10:00:00+00:00"
    assert cell(dt.date(2025, 3, 1)) == "2025-03-01"


def test_quoting_round_trips_commas_quotes_and_line_breaks() -> None:
    encoder = CsvEncoder()
    rows = [("a,b", 'say "hi"', "two\nlines", "", None, 1.5)]
    data = encoder.encode(rows)
    assert data == b'"a,b","say ""hi""","two\nlines",,,1.5\r\n'
    assert _parse(data) == [["a,b", 'say "hi"', "two\nlines", "", "", "1.5"]]


def test_each_call_returns_only_its_own_rows() -> None:
    encoder = CsvEncoder()
    assert encoder.encode([("a",)]) == b"a\r\n"
    assert encoder.encode([("b",), ("c",)]) == b"b\r\nc\r\n"
    assert encoder.encode([]) == b""


async def test_chunks_are_the_header_then_one_per_batch() -> None:
    async def batches():  # type: ignore[no-untyped-def]
        yield [("=x", 1)]
        yield []
        yield [("y", 2), ("z", 3)]

    chunks = [chunk async for chunk in csv_chunks(["name", "-n"], batches())]
    assert chunks == [b"name,'-n\r\n", b"'=x,1\r\n", b"y,2\r\nz,3\r\n"]


@given(st.lists(st.lists(st.text(), min_size=1, max_size=4), min_size=1, max_size=5))
def test_any_text_reads_back_as_written_but_for_the_guard(rows: list[list[str]]) -> None:
    data = CsvEncoder().encode(rows)
    assert _parse(data) == [[guarded(v) for v in row] for row in rows]
