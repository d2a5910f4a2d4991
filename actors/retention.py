"""Retention actor: deletes what has outlived its retention, in small batches, now and then.

Today that is expired idempotency keys (kept 24 h). Every instance runs one; the deletes
skip rows another instance holds, so they never wait on each other. A failed pass is logged
and tried again at the next interval.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import anyio
from anyio.abc import TaskStatus

from actors.base import Actor

logger = logging.getLogger("sevenp.retention")

Purge = Callable[[], Awaitable[int]]
_PASS_SECONDS = 30.0


class RetentionActor(Actor):
    name = "retention"

    def __init__(self, purges: Mapping[str, Purge], *, interval_seconds: float = 300.0) -> None:
        self._purges = dict(purges)
        self._interval = interval_seconds
        self.deleted: dict[str, int] = dict.fromkeys(self._purges, 0)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.sweep()
            await anyio.sleep(self._interval)

    async def sweep(self) -> None:
        """Run each purge until it deletes nothing more (a pass is bounded in time)."""
        for name, purge in self._purges.items():
            try:
                with anyio.fail_after(_PASS_SECONDS):
                    while (deleted := await purge()) > 0:
                        self.deleted[name] += deleted
            except Exception:
                logger.exception("retention pass %s failed", name)

    def details(self) -> Mapping[str, object]:
        return {"deleted": dict(self.deleted)}
