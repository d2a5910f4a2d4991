"""A stop ends within one shutdown budget (`DRAIN_SECONDS`) even when dependencies are frozen."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psutil
import pytest

from server.db.migrate import apply_migrations
from tests.support.live_server import LiveServer
from tests.support.services import redis_server_process

BUDGET_SECONDS = 3.0
# Scheduling noise on two shared cores; well under Granian's kill timeout past the budget.
SLACK_SECONDS = 1.5


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, psutil.Process]]:
    """A PostgreSQL of this test's own (it gets frozen), migrated; its postmaster."""
    import pgserver

    with tempfile.TemporaryDirectory(prefix="sevenp-frozen-pg-") as tmp:
        server = pgserver.get_server(Path(tmp), cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            asyncio.run(apply_migrations(url))
            pid = int((Path(tmp) / "postmaster.pid").read_text().split()[0])
            yield url, psutil.Process(pid)
        finally:
            server.cleanup()


@contextlib.contextmanager
def frozen(processes: list[psutil.Process]) -> Iterator[None]:
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


def _redis_process(port: int) -> psutil.Process:
    for process in psutil.process_iter(["name", "cmdline"]):
        if f"127.0.0.1:{port}" in " ".join(process.info["cmdline"] or []):
            return process
    raise LookupError(port)


async def test_a_stop_with_frozen_postgres_and_redis_ends_within_the_budget(
    private_postgres: tuple[str, psutil.Process],
) -> None:
    database_url, postmaster = private_postgres
    with redis_server_process() as redis_url:
        redis = _redis_process(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
        server = LiveServer(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "DRAIN_SECONDS": str(BUDGET_SECONDS),
                "DB_TIMEOUT_SECONDS": "30",
                "HEALTH_PROBE_TIMEOUT_SECONDS": "30",
            }
        ).start()
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
                assert (await http.get("/health/live")).status_code == 200
                with frozen([postmaster, *postmaster.children(recursive=True), redis]):
                    sent = anyio.Event()

                    async def note_sent(event: str, info: object) -> None:
                        if event == "http11.send_request_body.complete":
                            sent.set()

                    async def stuck_login() -> None:
                        with contextlib.suppress(httpx.HTTPError):
                            await http.post(
                                "/api/auth/login",
                                json={"email": "frozen@example.test", "password": "x" * 12},
                                extensions={"trace": note_sent},
                            )

                    async with anyio.create_task_group() as tg:
                        # In flight when the stop begins, stuck on the frozen database.
                        tg.start_soon(stuck_login)
                        await sent.wait()
                        started = time.monotonic()
                        server.signal(signal.SIGTERM)
                        code = await anyio.to_thread.run_sync(server.wait, 30)
                        took = time.monotonic() - started
                        tg.cancel_scope.cancel()
            assert took < BUDGET_SECONDS + SLACK_SECONDS, (took, server.log_tail())
            assert code == 0, server.log_tail()
        finally:
            server.stop()
