"""Counting requests in flight, so a graceful stop waits for them before closing anything."""

from __future__ import annotations

import anyio


class InFlight:
    """The number of requests being handled; `drained` waits until it is zero."""

    def __init__(self) -> None:
        self.count = 0

    async def drained(self, deadline_seconds: float) -> bool:
        with anyio.move_on_after(deadline_seconds):
            while self.count:  # noqa: ASYNC110 - a counter bumped per request; no event to spare
                await anyio.sleep(0.01)
            return True
        return False
