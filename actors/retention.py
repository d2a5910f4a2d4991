"""Retention actor: deletes what ended longer ago than the retention horizon, in small batches.

Which rows go is the store's business (server/db/retention.py names its purges); the actor
only paces them. Every `interval` it runs each purge in batches of at most `batch_size`
rows, one autocommitted statement per batch, until a batch comes back short. So no
statement holds row locks for more than one batch, and rows that others hold locked are
skipped and taken at a later round. Several instances may purge at the same time: they
skip each other's rows. A failed batch is noted in `details()` and the round moves on to
the next purge; the next round tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import anyio
import anyio.lowlevel
import psycopg
from anyio.abc import TaskStatus

from actors.base import Actor

logger = logging.getLogger("sevenp.retention")

DEFAULT_BATCH_SIZE = 1000
_DATABASE_ERRORS = (psycopg.Error, TimeoutError)


class RetentionStore(Protocol):
    """The purges, each deleting up to `limit` rows that ended beyond the horizon."""

    def purges(self) -> Sequence[str]: ...

    async def purge(self, name: str, *, horizon_seconds: float, limit: int) -> int | None:
        """Rows deleted by one batch; None when the purge does not apply (its table is absent)."""
        ...


class RetentionActor(Actor):
    """Runs every purge of its store every `interval` seconds, in batches, then each
    `maintenance` task (such as making and dropping the audit log's monthly partitions)."""

    def __init__(
        self,
        *,
        store: RetentionStore,
        horizon_seconds: float,
        interval: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
        db_timeout: float = 5.0,
        maintenance: Mapping[str, Callable[[], Awaitable[int]]] | None = None,
    ) -> None:
        if horizon_seconds <= 0 or interval <= 0 or db_timeout <= 0:
            raise ValueError("horizon_seconds, interval and db_timeout must be positive")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.name = "retention"
        self._store = store
        self._maintenance = dict(maintenance or {})
        self._horizon_seconds = horizon_seconds
        self._interval = interval
        self._batch_size = batch_size
        self._db_timeout = db_timeout
        self._stop = anyio.Event()
        self._rounds = 0
        self._deleted: dict[str, int] = {}
        self._last_error: str | None = None

    def request_stop(self) -> bool:
        self._stop.set()
        return True

    def details(self) -> Mapping[str, object]:
        return {
            "rounds": self._rounds,
            "deleted": dict(self._deleted),
            "last_error": self._last_error,
        }

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._stop = anyio.Event()
        task_status.started()
        while not self._stop.is_set():
            await self.run_round()
            with anyio.move_on_after(self._interval):
                await self._stop.wait()

    async def run_round(self) -> dict[str, int]:
        """One pass over every purge; the rows each deleted."""
        deleted: dict[str, int] = {}
        for name in self._store.purges():
            if self._stop.is_set():
                break
            deleted[name] = await self._purge_all(name)
            self._deleted[name] = self._deleted.get(name, 0) + deleted[name]
        for name, task in self._maintenance.items():
            if self._stop.is_set():
                break
            try:
                with anyio.fail_after(self._db_timeout):
                    deleted[name] = await task()
            except _DATABASE_ERRORS as exc:
                self._last_error = f"{name}: {type(exc).__name__}: {exc}"[:500]
                logger.warning("retention: %s", self._last_error)
        self._rounds += 1
        if any(deleted.values()):
            logger.info("retention deleted %s", deleted)
        return deleted

    async def _purge_all(self, name: str) -> int:
        total = 0
        while not self._stop.is_set():
            try:
                with anyio.fail_after(self._db_timeout):
                    count = await self._store.purge(
                        name, horizon_seconds=self._horizon_seconds, limit=self._batch_size
                    )
            except _DATABASE_ERRORS as exc:
                self._last_error = f"purging {name}: {type(exc).__name__}: {exc}"[:500]
                logger.warning("retention: %s", self._last_error)
                break
            if count is None:
                break
            total += count
            if count < self._batch_size:
                break
            await anyio.lowlevel.checkpoint()  # let requests in between batches
        return total
