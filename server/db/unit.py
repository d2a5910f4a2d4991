"""The unit of work: one transaction that a request or an actor opens and hands to services.

    async with database.unit() as uow:
        user = await uow.one(users.GET, {"id": user_id}, User)
        await uow.execute(audit.RECORD, {...})
        uow.after_commit(announce)          # runs once the transaction has committed

A unit takes a connection from the pool at its first statement (a unit that runs none
costs nothing), runs every statement in one transaction, commits when the block ends and
rolls back when it raises. Work that must follow a commit (announcing a revocation,
waking the mail actor, invalidating cache tags) is registered with `after_commit`, work that
must follow a failure (releasing an idempotency key) with `after_rollback`; both run
shielded from cancellation, so a client hanging up cannot lose them.

Deadlines. Every unit has one: the request's (`Database.request_budget()`, entered once per
request), else its own budget from its start. Waiting for a connection, each statement and
the commit run under it; past it the unit raises `TimeoutError` (a 503) and the connection,
whose state is then unknown, is closed instead of being returned. A frozen database thus
holds no request longer than the budget. When the health actor already knows the database
is down (`available()` is False), a unit refuses at its first statement with
`DatabaseUnavailable` (a 503 too) without taking a connection; a unit that runs no
statement never asks.

`database.unit(autocommit=True)` runs each statement on its own instead, without the
BEGIN and COMMIT round trips: for the actors' single statements, whose effect must not
wait for (or roll back with) anything else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import psycopg
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Tracer
from psycopg import AsyncConnection, AsyncCursor, AsyncTransaction
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory, TupleRow, tuple_row

from server.db.pool import Pool
from server.db.queries import replica as replica_queries
from server.db.replica import PRIMARY, REPLICA, ReadRouting
from server.db.rows import struct_row
from server.db.statement import Statement

T = TypeVar("T")
R = TypeVar("R")
Params = Mapping[str, Any] | Sequence[Any] | None
AfterCommit = Callable[[], Awaitable[None]]

logger = logging.getLogger("sevenp.db")
slow_logger = logging.getLogger("sevenp.db.slow")
_AFTER_COMMIT_SECONDS = 5.0
_request_deadline: ContextVar[float | None] = ContextVar("sevenp_request_deadline", default=None)


class DatabaseUnavailable(psycopg.OperationalError):
    """The database is known to be down: refused before a connection was asked for."""


class UnitOfWork:
    """Statements of one transaction; see the module docstring."""

    __slots__ = (
        "_after",
        "_after_rollback",
        "_autocommit",
        "_conn",
        "_database",
        "_deadline",
        "_pool",
        "_read_only",
        "_routing",
        "_transaction",
        "_writer",
        "server",
        "statements",
        "written_position",
    )

    def __init__(
        self,
        database: Database,
        *,
        autocommit: bool,
        deadline: float,
        replica: ReadRouting | None = None,
        read_only: bool = False,
        writer: str | None = None,
    ) -> None:
        self._database = database
        self._autocommit = autocommit
        self._deadline = deadline
        self._read_only = read_only
        self._routing = replica
        self._pool = database.pool if replica is None else replica.pool
        self._writer = writer
        self._conn: AsyncConnection[TupleRow] | None = None
        self._transaction: AbstractAsyncContextManager[AsyncTransaction] | None = None
        self._after: list[AfterCommit] = []
        self._after_rollback: list[AfterCommit] = []
        self.statements: list[str] = []
        """The names of the statements run so far, in order."""
        self.server = PRIMARY if replica is None else REPLICA
        """Where the unit's statements run: "primary" or "replica"."""
        self.written_position: int | None = None
        """For a `writer`'s unit, the primary's WAL position once it committed."""

    async def _connection(self) -> AsyncConnection[TupleRow]:
        if self._conn is not None:
            return self._conn
        if not self._database.available():
            raise DatabaseUnavailable("the database is down")
        try:
            return await self._connect()
        except psycopg.OperationalError as exc:
            if not await self._fall_back(exc):
                raise
            return await self._connect()

    async def _connect(self) -> AsyncConnection[TupleRow]:
        pool = self._pool
        left = max(0.0, self._deadline - anyio.current_time())
        # On the replica, half the time left: the other half is the primary's, should it fail.
        with anyio.fail_at(self._deadline):
            conn = await pool.getconn(timeout=left if self._routing is None else left / 2)
        self._conn = conn
        if self._read_only and not self._autocommit:
            with anyio.fail_at(self._deadline):
                await conn.execute("BEGIN READ ONLY")
        elif not self._autocommit:
            transaction = conn.transaction()
            with anyio.fail_at(self._deadline):
                await transaction.__aenter__()
            self._transaction = transaction
        return conn

    async def _fall_back(self, error: psycopg.OperationalError) -> bool:
        """Before any statement succeeded on the replica, a replica that cannot be reached (no
        connection in time, or a broken one) hands the unit to the primary. Whether it did."""
        routing, conn = self._routing, self._conn
        if routing is None or self.statements:
            return False
        if conn is not None and not conn.broken:
            return False
        self._conn = self._transaction = None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await routing.pool.putconn(conn)
        routing.fell_back(error)
        self._routing = None
        self._pool = self._database.pool
        self.server = PRIMARY
        return True

    async def one(self, statement: Statement, params: Params, row: type[T]) -> T | None:
        """The first row as `row`, or None."""
        async with self._cursor(statement, params, struct_row(row)) as cur:
            return await cur.fetchone()

    async def all(self, statement: Statement, params: Params, row: type[T]) -> list[T]:
        async with self._cursor(statement, params, struct_row(row)) as cur:
            return await cur.fetchall()

    async def value(self, statement: Statement, params: Params) -> Any:
        """The first column of the first row, or None when there is no row."""
        async with self._cursor(statement, params, tuple_row) as cur:
            found = await cur.fetchone()
        return None if found is None else found[0]

    async def execute(self, statement: Statement, params: Params) -> int:
        """Run a statement for its effect; the number of rows it touched."""
        async with self._cursor(statement, params, tuple_row) as cur:
            return cur.rowcount

    @asynccontextmanager
    async def _cursor(
        self, statement: Statement, params: Params, rows: AsyncRowFactory[R]
    ) -> AsyncIterator[AsyncCursor[R]]:
        database = self._database
        span = database.span(statement)
        try:
            started = time.perf_counter()
            try:
                cur = await self._executed(statement, params, rows)
                self.statements.append(statement.name)
                async with cur:
                    yield cur
            except BaseException as exc:
                database.timed(statement, started, type(exc).__qualname__)
                raise
            database.timed(statement, started)
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            if span is not None:
                span.end()

    async def _executed(
        self, statement: Statement, params: Params, rows: AsyncRowFactory[R]
    ) -> AsyncCursor[R]:
        conn = await self._connection()
        cur = conn.cursor(row_factory=rows)
        try:
            with anyio.fail_at(self._deadline):
                await cur.execute(statement.sql, params, prepare=statement.prepare)
        except psycopg.OperationalError as exc:
            await cur.close()
            if not await self._fall_back(exc):
                raise
            return await self._executed(statement, params, rows)
        except BaseException:
            await cur.close()
            raise
        return cur

    async def _finish(self, error: BaseException | None) -> None:
        """Commit (or roll back after `error`) under the deadline, then hand the connection
        back: closed first unless it is idle, since its state is then unknown."""
        conn, transaction = self._conn, self._transaction
        self._conn = self._transaction = None
        if conn is None:
            return
        try:
            if transaction is not None and not conn.closed:
                if error is None:
                    with anyio.fail_at(self._deadline):
                        await transaction.__aexit__(None, None, None)
                else:
                    with anyio.move_on_at(self._deadline):
                        await transaction.__aexit__(type(error), error, error.__traceback__)
            elif self._read_only and not self._autocommit and not conn.closed:
                with anyio.move_on_at(self._deadline):
                    await conn.execute("COMMIT" if error is None else "ROLLBACK")
            if error is None and self._writer is not None:
                await self._note_written_position(conn)
        finally:
            with anyio.CancelScope(shield=True):
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    await conn.close()
                await self._pool.putconn(conn)

    async def _note_written_position(self, conn: AsyncConnection[TupleRow]) -> None:
        """The primary's WAL position now the writer's unit has committed; a failure to learn
        it is logged and costs that writer read-your-writes on the replica, nothing else."""
        try:
            with anyio.fail_at(self._deadline):
                cur = await conn.execute(replica_queries.WRITTEN_POSITION.sql)
                found = await cur.fetchone()
        except (psycopg.Error, TimeoutError) as exc:
            logger.warning("could not read the WAL position after a write: %r", exc)
            return
        self.written_position = None if found is None else int(found[0])

    def after_commit(self, action: AfterCommit) -> None:
        self._after.append(action)

    def after_rollback(self, action: AfterCommit) -> None:
        self._after_rollback.append(action)

    async def _run_after_commit(self) -> None:
        actions, self._after = self._after, []
        self._after_rollback = []
        await _run_shielded(actions)

    async def _run_after_rollback(self) -> None:
        actions, self._after_rollback = self._after_rollback, []
        self._after = []
        await _run_shielded(actions)


async def _run_shielded(actions: list[AfterCommit]) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(_AFTER_COMMIT_SECONDS):
        for action in actions:
            try:
                await action()
            except Exception:
                logger.exception("an action after the unit ended failed")


class Database:
    """Opens units of work on the pool; logs statements slower than `slow_query_ms`.

    `budget_seconds` is how long a unit (or a request, see `request_budget`) may take over
    its statements; `available` says whether the database may be asked at all.

    With telemetry, each statement's duration is recorded (`db.client.operation.duration`,
    with the statement's name as `db.query.summary`), and inside a sampled request each
    statement gets a client span named after it.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        slow_query_ms: float = 100.0,
        budget_seconds: float = 5.0,
        available: Callable[[], bool] = lambda: True,
        duration: Histogram | None = None,
        tracer: Tracer | None = None,
        replica: ReadRouting | None = None,
    ) -> None:
        self.pool = pool
        self.replica = replica
        self.available = available
        self._slow_seconds = slow_query_ms / 1000
        self._budget = budget_seconds
        self._duration = duration
        self._tracer = tracer
        self._attributes: dict[str, dict[str, str]] = {}

    def _attributes_of(self, statement: Statement) -> dict[str, str]:
        found = self._attributes.get(statement.name)
        if found is None:
            found = self._attributes[statement.name] = {
                "db.system.name": "postgresql",
                "db.query.summary": statement.name,
            }
        return found

    def span(self, statement: Statement) -> trace.Span | None:
        """A client span for `statement`, when the request running it is sampled."""
        if self._tracer is None or not trace.get_current_span().is_recording():
            return None
        return self._tracer.start_span(
            statement.name,
            kind=SpanKind.CLIENT,
            attributes={**self._attributes_of(statement), "db.query.text": statement.sql},
        )

    @contextmanager
    def request_budget(self) -> Iterator[None]:
        """Every unit opened within shares one deadline, `budget_seconds` from now."""
        token = _request_deadline.set(anyio.current_time() + self._budget)
        try:
            yield
        finally:
            _request_deadline.reset(token)

    def _deadline(self) -> float:
        deadline = _request_deadline.get()
        return anyio.current_time() + self._budget if deadline is None else deadline

    def unit(
        self, *, autocommit: bool = False, writer: str | None = None
    ) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit on the primary. With a replica configured, a `writer`'s unit keeps the WAL
        position of its commit, so that the writer's reads wait for the replica to replay it
        (`server.db.replica`)."""
        writer = writer if self.replica is not None else None
        return self._run(
            UnitOfWork(self, autocommit=autocommit, deadline=self._deadline(), writer=writer)
        )

    def read_unit(
        self, reader: str | None, *, autocommit: bool = False
    ) -> AbstractAsyncContextManager[UnitOfWork]:
        """A READ ONLY unit for `reader` (a user id, or None for a read shared by everyone) on
        the replica when `server.db.replica` routes it there, else on the primary.

        With `autocommit`, no transaction: the replica's sessions still refuse writes, but on
        the primary such a unit is only as read-only as its statements."""
        routing = None if self.replica is None else self.replica.route(reader)
        return self._run(
            UnitOfWork(
                self,
                autocommit=autocommit,
                deadline=self._deadline(),
                replica=None if routing is None else self.replica,
                read_only=True,
            )
        )

    @asynccontextmanager
    async def _run(self, uow: UnitOfWork) -> AsyncIterator[UnitOfWork]:
        try:
            yield uow
        except BaseException as exc:
            await uow._finish(exc)
            await uow._run_after_rollback()
            raise
        try:
            await uow._finish(None)
        except BaseException:
            await uow._run_after_rollback()
            raise
        if uow.written_position is not None and uow._writer is not None:
            await self._wrote(uow._writer, uow.written_position)
        await uow._run_after_commit()

    async def _wrote(self, writer: str, position: int) -> None:
        replica = self.replica
        if replica is None:
            return
        replica.wrote(writer, position)
        if replica.announce is not None:
            with anyio.CancelScope(shield=True):
                await replica.announce(writer, position)

    def timed(self, statement: Statement, started: float, error_type: str | None = None) -> None:
        elapsed = time.perf_counter() - started
        if self._duration is not None:
            attributes = self._attributes_of(statement)
            if error_type is not None:
                attributes = {**attributes, "error.type": error_type}
            self._duration.record(elapsed, attributes)
        if elapsed >= self._slow_seconds:
            slow_logger.warning("slow query %s took %.1f ms", statement.name, elapsed * 1000)
