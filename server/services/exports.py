"""CSV exports streamed from a server-side cursor: enrollments (admins) and a course's gradebook.

Each export is an async iterator of CSV byte chunks that opens its own read-only snapshot
(`server.db.streaming`) when first read and releases it when it ends, fails, is cancelled or
is closed: a response body outlives the request's unit of work, which commits before the
body is sent. Access is the caller's to check first; these functions read what they are
asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

import msgspec
from psycopg.rows import TupleRow

from server.db.queries import exports as q
from server.db.streaming import RowStream, snapshot
from server.db.unit import Database
from server.services.csv_rows import csv_chunks
from server.services.viewer import Viewer

GRADEBOOK_FIXED = ("name", "email", "status", "progress")


class _Assessment(msgspec.Struct):
    id: str
    title: str
    max_score: float
    scoring_policy: str


async def stream_enrollments_csv(
    database: Database,
    *,
    reader: str | None = None,
    course_id: str | None = None,
    since: dt.datetime | None = None,
) -> AsyncIterator[bytes]:
    """Every enrollment (of one course, enrolled since a time), oldest first, as CSV."""
    async with snapshot(database, reader) as snap:
        rows = await snap.rows(q.ENROLLMENTS, {"course": course_id, "since": since})
        async with aclosing(csv_chunks(rows.columns, rows)) as chunks:
            async for chunk in chunks:
                yield chunk


async def _flattened(rows: RowStream) -> AsyncIterator[list[tuple[object, ...]]]:
    async for batch in rows:
        yield [_gradebook_line(row) for row in batch]


def _gradebook_line(row: TupleRow) -> tuple[object, ...]:
    name, email, status, progress, scores, grade = row
    return (name, email, status, progress, *scores, grade)


def gradebook_header(titles: Sequence[str]) -> list[str]:
    return [*GRADEBOOK_FIXED, *titles, "course_grade"]


async def stream_gradebook_csv(
    database: Database, course_id: str, *, reader: str | None = None
) -> AsyncIterator[bytes]:
    """A course's gradebook as CSV: per student, name, email, status, progress, each published
    assessment's effective score (a column per assessment, titled by it) and the course grade.
    """
    async with snapshot(database, reader) as snap:
        assessments = await snap.all(q.GRADEBOOK_ASSESSMENTS, {"course": course_id}, _Assessment)
        rows = await snap.rows(q.GRADEBOOK, {"course": course_id}, batch=500)
        header = gradebook_header([a.title for a in assessments])
        async with aclosing(csv_chunks(header, _flattened(rows))) as chunks:
            async for chunk in chunks:
                yield chunk


class Exports:
    """The exports, bound to the worker's database (what route handlers are given); each reads
    where the viewer's reads are routed (`server.db.replica`)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def enrollments_csv(
        self, viewer: Viewer, *, course_id: str | None, since: dt.datetime | None
    ) -> AsyncIterator[bytes]:
        return stream_enrollments_csv(
            self._database, reader=viewer.user_id, course_id=course_id, since=since
        )

    def gradebook_csv(self, viewer: Viewer, course_id: str) -> AsyncIterator[bytes]:
        return stream_gradebook_csv(self._database, course_id, reader=viewer.user_id)
