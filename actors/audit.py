"""Audit actor: appends the audit events that have no transaction of their own, in batches.

A failed login or a refused authorisation changes nothing, so there is no unit of work to
write its row in; the request hands the event to `submit()` (no await, no I/O) and goes on.
The actor writes what is queued through an `AuditSink` (server/db/audit.py), one statement
per batch: when `batch_rows` events are waiting, or `flush_seconds` after the oldest arrived.

- Bounded: at most `capacity` events wait; past it, new events are dropped and counted
  (`details()["dropped"]`), so a flood of failed logins cannot grow memory.
- An event leaves the queue only once its batch is written; a failed write is retried at
  the next flush, and a crash of the actor itself keeps the queue for the restarted run.
- A graceful stop writes everything queued before returning.
- The loss bound if the process dies: what was queued and not yet written, i.e. the events
  of the last `flush_seconds` (plus the batch being written), never more than `capacity`;
  with the database down, everything queued since it went down, up to `capacity`.
"""

from __future__ import annotations

import datetime
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal, Protocol

import anyio
import psycopg
from anyio.abc import TaskStatus

from actors.base import Actor

logger = logging.getLogger("sevenp.audit")

Outcome = Literal["success", "failure", "denied"]
_DATABASE_ERRORS = (psycopg.Error, TimeoutError)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event: who did what to which target, from where, with what outcome."""

    action: str
    outcome: Outcome
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    address: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    occurred_at: datetime.datetime = field(default_factory=_now)


class AuditSink(Protocol):
    """Appends a batch of records in one statement, or raises."""

    async def write(self, records: Sequence[AuditRecord]) -> None: ...


class AuditActor(Actor):
    """Queues audit records in process and writes them in batches."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        flush_seconds: float = 0.5,
        batch_rows: int = 200,
        capacity: int = 10_000,
        write_timeout: float = 5.0,
    ) -> None:
        if flush_seconds <= 0 or write_timeout <= 0:
            raise ValueError("flush_seconds and write_timeout must be positive")
        if batch_rows < 1 or capacity < batch_rows:
            raise ValueError("need 1 <= batch_rows <= capacity")
        self.name = "audit"
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._batch_rows = batch_rows
        self._capacity = capacity
        self._write_timeout = write_timeout
        self._queue: deque[AuditRecord] = deque()
        self._wake: anyio.Event | None = None
        self._stop_requested = False
        self._written = 0
        self._dropped = 0
        self._last_error: str | None = None

    def submit(self, record: AuditRecord) -> bool:
        """Queue a record for the next batch; False (and counted) when the queue is full.

        Call it from the event loop's thread; it never blocks.
        """
        if len(self._queue) >= self._capacity:
            self._dropped += 1
            return False
        self._queue.append(record)
        if len(self._queue) == self._batch_rows and self._wake is not None:
            self._wake.set()
        return True

    def request_stop(self) -> bool:
        """Write everything queued, then return."""
        self._stop_requested = True
        if self._wake is not None:
            self._wake.set()
        return True

    def mailbox_depth(self) -> int:
        return len(self._queue)

    def details(self) -> Mapping[str, object]:
        return {
            "written": self._written,
            "dropped": self._dropped,
            "queued": len(self._queue),
            "last_error": self._last_error,
        }

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._stop_requested = False
        task_status.started()
        failing = False
        while not self._stop_requested:
            if failing or len(self._queue) < self._batch_rows:
                self._wake = anyio.Event()
                try:
                    with anyio.move_on_after(self._flush_seconds):
                        await self._wake.wait()
                finally:
                    self._wake = None
            failing = not await self.flush()
        with anyio.CancelScope(shield=True):
            await self.flush()

    async def flush(self) -> bool:
        """Write every queued record in batches; False at the first batch that failed."""
        while self._queue:
            batch = list(islice(self._queue, self._batch_rows))
            try:
                with anyio.fail_after(self._write_timeout):
                    await self._sink.write(batch)
            except _DATABASE_ERRORS as exc:
                self._last_error = _describe(exc, timeout=self._write_timeout)
                logger.warning(
                    "audit actor: writing %d records failed (%s); %d queued",
                    len(batch),
                    self._last_error,
                    len(self._queue),
                )
                return False
            for _ in batch:
                self._queue.popleft()
            self._written += len(batch)
        return True


def _describe(exc: BaseException, *, timeout: float) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, TimeoutError) and not text:
        return f"TimeoutError: no answer within {timeout:g}s"
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
