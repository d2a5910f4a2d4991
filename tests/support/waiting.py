"""Waiting on observable state: poll a condition until it holds, failing past a deadline."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

import anyio


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], *, within: float, poll: float = 0.005
) -> float:
    """Seconds until `predicate()` (or the awaitable it returns) held; TimeoutError past `within`."""
    started = anyio.current_time()
    with anyio.fail_after(within):
        while True:
            held = predicate()
            if inspect.isawaitable(held):
                held = await held
            if held:
                return anyio.current_time() - started
            await anyio.sleep(poll)


def eventually_sync(predicate: Callable[[], bool], *, within: float, poll: float = 0.05) -> float:
    """`eventually` for synchronous fixtures and tests; TimeoutError past `within`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            raise TimeoutError(f"not within {within:g} s")
        time.sleep(poll)
    return time.monotonic() - started
