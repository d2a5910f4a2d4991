"""Rows read as the database produces them, on a connection held for as long as they are read.

    async with snapshot(database) as snap:
        columns = await snap.all(gradebook.COLUMNS, {"course": course_id}, Column)
        rows = await snap.rows(gradebook.ROWS, {"course": course_id})
        async for batch in rows:                # lists of tuples; `rows.columns`, their names
            ...

A snapshot is a read-only REPEATABLE READ transaction on a pooled connection of its own, so
the statements of one export agree with each other, and a response body that outlives its
request's unit of work can keep reading. `rows` declares a server-side cursor and fetches
`batch` rows at a time: memory stays flat whatever the number of rows, and the first batch
is ready as soon as the plan produces it (a cursor is planned for its first rows).

However the reader ends (finished, failed, cancelled mid-fetch, or an async generator closed
while suspended), the connection is rolled back and returned to the pool in a shielded
scope; one left in the middle of a statement is closed by the pool instead of reused.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection, AsyncServerCursor
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow, tuple_row

from server.db.pool import Pool
from server.db.replica import PRIMARY, REPLICA
from server.db.rows import struct_row
from server.db.statement import Statement
from server.db.unit import Database, Params

T = TypeVar("T")
DEFAULT_BATCH = 1000
_ROLLBACK_SECONDS = 5.0
_cursor_names = itertools.count(1)
_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class RowStream:
    """The rows of one statement, in batches; `columns` are their names, in order."""

    __slots__ = ("_batch", "_cursor", "_database", "_started", "_statement", "columns")

    def __init__(
        self,
        database: Database,
        statement: Statement,
        cursor: AsyncServerCursor[TupleRow],
        batch: int,
        started: float,
    ) -> None:
        self._database = database
        self._statement = statement
        self._cursor = cursor
        self._batch = batch
        self._started = started
        self.columns: tuple[str, ...] = tuple(c.name for c in cursor.description or ())

    async def __aiter__(self) -> AsyncIterator[Sequence[TupleRow]]:
        first = True
        while True:
            batch = await self._cursor.fetchmany(self._batch)
            if first:
                # The time to the first rows is the statement's cost; the rest is the reader's.
                self._database.timed(self._statement, self._started)
                first = False
            if not batch:
                return
            yield batch


class Snapshot:
    """Statements of one read-only transaction on a connection of its own."""

    __slots__ = ("_conn", "_cursors", "_database", "server")

    def __init__(self, database: Database, conn: AsyncConnection[TupleRow], server: str) -> None:
        self._database = database
        self._conn = conn
        self._cursors: list[AsyncServerCursor[TupleRow]] = []
        self.server = server
        """Where its statements run: "primary" or "replica"."""

    async def all(self, statement: Statement, params: Params, row: type[T]) -> list[T]:
        started = time.perf_counter()
        async with self._conn.cursor(row_factory=struct_row(row)) as cur:
            await cur.execute(statement.sql, params, prepare=statement.prepare)
            found = await cur.fetchall()
        self._database.timed(statement, started)
        return found

    async def rows(
        self, statement: Statement, params: Params, *, batch: int = DEFAULT_BATCH
    ) -> RowStream:
        """Declare a cursor over `statement`; its rows are fetched as the stream is read."""
        started = time.perf_counter()
        name = f"sevenp_rows_{next(_cursor_names)}"
        cursor: AsyncServerCursor[TupleRow] = self._conn.cursor(name, row_factory=tuple_row)
        cursor.itersize = batch
        self._cursors.append(cursor)
        await cursor.execute(statement.sql, params)
        return RowStream(self._database, statement, cursor, batch, started)


@asynccontextmanager
async def snapshot(database: Database, reader: str | None = None) -> AsyncIterator[Snapshot]:
    """A read-only snapshot on a pooled connection, released however the block ends: on the
    read replica when `server.db.replica` routes `reader`'s reads there, else on the primary."""
    replica = database.replica
    routed = None if replica is None else replica.route(reader)
    if replica is not None and routed is not None:
        try:
            conn = await routed.getconn()
            try:
                await conn.execute(_BEGIN)
            except BaseException:
                await _release(routed, conn, [])
                raise
        except psycopg.OperationalError as exc:
            replica.fell_back(exc)
        else:
            async with _held(database, routed, conn, REPLICA) as snap:
                yield snap
            return
    pool = database.pool
    conn = await pool.getconn()
    async with _held(database, pool, conn, PRIMARY) as snap:
        await conn.execute(_BEGIN)
        yield snap


@asynccontextmanager
async def _held(
    database: Database, pool: Pool, conn: AsyncConnection[TupleRow], server: str
) -> AsyncIterator[Snapshot]:
    snap = Snapshot(database, conn, server)
    try:
        yield snap
    finally:
        await _release(pool, conn, snap._cursors)


async def _release(
    pool: Pool, conn: AsyncConnection[Any], cursors: list[AsyncServerCursor[TupleRow]]
) -> None:
    with anyio.CancelScope(shield=True):
        status = conn.info.transaction_status
        if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            with anyio.move_on_after(_ROLLBACK_SECONDS):
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("ROLLBACK")
        # The rollback ended the cursors in the server; closing them now costs no round trip
        # (nor tries one on a connection left mid-statement).
        for cursor in cursors:
            with contextlib.suppress(psycopg.Error):
                await cursor.close()
        # A connection still ACTIVE (cancelled mid-fetch) or broken is closed by the pool.
        await pool.putconn(conn)
