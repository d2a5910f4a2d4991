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
        "_transaction",
        "statements",
    )

    def __init__(self, database: Database, *, autocommit: bool, deadline: float) -> None:
        self._database = database
        self._autocommit = autocommit
        self._deadline = deadline
        self._conn: AsyncConnection[TupleRow] | None = None
        self._transaction: AbstractAsyncContextManager[AsyncTransaction] | None = None
        self._after: list[AfterCommit] = []
        self._after_rollback: list[AfterCommit] = []
        self.statements: list[str] = []
        """The names of the statements run so far, in order."""

    async def _connection(self) -> AsyncConnection[TupleRow]:
        if self._conn is not None:
            return self._conn
        if not self._database.available():
            raise DatabaseUnavailable("the database is down")
        pool = self._database.pool
        with anyio.fail_at(self._deadline):
            conn = await pool.getconn(timeout=max(0.0, self._deadline - anyio.current_time()))
        self._conn = conn
        if not self._autocommit:
            transaction = conn.transaction()
            with anyio.fail_at(self._deadline):
                await transaction.__aenter__()
            self._transaction = transaction
        return conn

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
            conn = await self._connection()
            self.statements.append(statement.name)
            started = time.perf_counter()
            try:
                async with conn.cursor(row_factory=rows) as cur:
                    with anyio.fail_at(self._deadline):
                        await cur.execute(statement.sql, params, prepare=statement.prepare)
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
        finally:
            with anyio.CancelScope(shield=True):
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    await conn.close()
                await self._database.pool.putconn(conn)

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
    ) -> None:
        self.pool = pool
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

    @asynccontextmanager
    async def unit(self, *, autocommit: bool = False) -> AsyncIterator[UnitOfWork]:
        deadline = _request_deadline.get()
        if deadline is None:
            deadline = anyio.current_time() + self._budget
        uow = UnitOfWork(self, autocommit=autocommit, deadline=deadline)
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
        await uow._run_after_commit()

    def timed(self, statement: Statement, started: float, error_type: str | None = None) -> None:
        elapsed = time.perf_counter() - started
        if self._duration is not None:
            attributes = self._attributes_of(statement)
            if error_type is not None:
                attributes = {**attributes, "error.type": error_type}
            self._duration.record(elapsed, attributes)
        if elapsed >= self._slow_seconds:
            slow_logger.warning("slow query %s took %.1f ms", statement.name, elapsed * 1000)
