"""Slowloris: connections that never finish their request head cannot starve other clients."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import anyio
import anyio.abc
import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.waiting import eventually

BACKPRESSURE = 10
HEADER_TIMEOUT_SECONDS = 2.0
SLOW_SOCKETS = 50  # five times the connections a worker takes at once
BYTE_EVERY_SECONDS = 1.0


@pytest.fixture(scope="module")
def small_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BACKPRESSURE": str(BACKPRESSURE),
            "HTTP_HEADER_READ_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
        }
    ).start()
    yield server
    server.stop()


async def _slow_client(
    port: int, *, trickle: bool, connected: list[int], lasted: list[float]
) -> None:
    """Opens a connection, then either sends nothing or one header byte at a time."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    started = anyio.current_time()
    connected.append(port)
    async with stream:
        try:
            if trickle:
                await stream.send(b"GET /health/live HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
            while anyio.current_time() - started < 60:
                with anyio.move_on_after(BYTE_EVERY_SECONDS):
                    await stream.receive()
                if trickle:
                    await stream.send(b"a")
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            lasted.append(anyio.current_time() - started)


async def test_slowloris_cannot_starve_normal_clients(small_server: LiveServer) -> None:
    connected: list[int] = []
    lasted: list[float] = []
    # Each round of slow connections holds every slot for at most the header timeout.
    bound = math.ceil(SLOW_SOCKETS / BACKPRESSURE) * HEADER_TIMEOUT_SECONDS + 5
    async with anyio.create_task_group() as tg:
        for n in range(SLOW_SOCKETS):
            tg.start_soon(
                lambda trickle=n % 2 == 0: _slow_client(
                    small_server.port, trickle=trickle, connected=connected, lasted=lasted
                )
            )
        await eventually(lambda: len(connected) == SLOW_SOCKETS, within=10)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=small_server.base_url, timeout=bound + 5) as http:
            response = await http.get("/health/live")
        waited = time.monotonic() - started
        assert response.status_code == 200
        assert waited < bound, waited
        # Every slow connection, silent or trickling, is closed by the server.
        await eventually(lambda: len(lasted) == SLOW_SOCKETS, within=bound)
    assert max(lasted) < bound, sorted(lasted)


async def _read_until_closed(stream: anyio.abc.ByteStream) -> None:
    while True:
        await stream.receive()


async def test_an_idle_keep_alive_connection_is_closed(small_server: LiveServer) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", small_server.port)
    async with stream:
        await stream.send(b"GET /health/live HTTP/1.1\r\nHost: idle\r\n\r\n")
        assert (await stream.receive()).startswith(b"HTTP/1.1 200")
        idle_since = anyio.current_time()
        with anyio.fail_after(HEADER_TIMEOUT_SECONDS + 5), pytest.raises(anyio.EndOfStream):
            await _read_until_closed(stream)
        assert anyio.current_time() - idle_since >= HEADER_TIMEOUT_SECONDS - 0.5
