"""Authenticating a request costs no SQL statement and no Redis command (API.md, GET /auth/me)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest
import redis

from server.db.migrate import apply_migrations
from tests.support.accounts import register
from tests.support.live_server import LiveServer
from tests.support.services import redis_server_process

# Connection upkeep, not work done for a request.
_QUIET = {"ping", "info", "client", "client|setinfo", "client|setname", "hello"}


class StatementLog:
    """An embedded PostgreSQL that logs every statement, and a cursor into that log."""

    def __init__(self, data: Path) -> None:
        from pgserver.postgres_server import get_server

        self.server = get_server(data, cleanup_mode="stop")
        self.url = self.server.get_uri("postgres")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("ALTER DATABASE postgres SET log_statement = 'all'")
        self._log = data / "log"
        self._offset = 0

    def mark(self) -> None:
        self._offset = self._log.stat().st_size

    def statements_since_mark(self) -> list[str]:
        with self._log.open("rb") as log:
            log.seek(self._offset)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if "statement:" in line or "execute" in line]


@pytest.fixture(scope="module")
def counted_services() -> Iterator[tuple[StatementLog, str]]:
    with tempfile.TemporaryDirectory(prefix="sevenp-pg-count-") as tmp:
        statements = StatementLog(Path(tmp))
        anyio.run(apply_migrations, statements.url)
        with redis_server_process() as redis_url:
            yield statements, redis_url
        statements.server.cleanup()


def _counted_server(statements: StatementLog, redis_url: str, **env: str) -> LiveServer:
    return LiveServer(
        {
            "DATABASE_URL": statements.url,
            "REDIS_URL": redis_url,
            "HEALTH_INTERVAL_SECONDS": "3600",
            "SESSION_FLUSH_SECONDS": "3600",
            "MAIL_POLL_SECONDS": "3600",
            **env,
        }
    ).start()


@pytest.fixture(scope="module")
def counted_server(
    counted_services: tuple[StatementLog, str],
) -> Iterator[tuple[LiveServer, StatementLog, str]]:
    """The limiter off: what authentication itself costs, with nothing else in the way."""
    statements, redis_url = counted_services
    server = _counted_server(statements, redis_url, RATE_LIMIT_ENABLED="false")
    try:
        yield server, statements, redis_url
    finally:
        server.stop()


def _commands(redis_url: str) -> dict[str, int]:
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in _QUIET
    }


async def test_me_makes_no_sql_and_no_redis_round_trip(
    counted_server: tuple[LiveServer, StatementLog, str],
) -> None:
    server, statements, redis_url = counted_server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        account = await register(http)
        await anyio.sleep(0.5)
        statements.mark()
        redis_before = _commands(redis_url)
        for _ in range(200):
            response = await http.get("/api/auth/me", headers=account.auth)
            assert response.status_code == 200
        await anyio.sleep(0.5)
        assert statements.statements_since_mark() == []
        assert _commands(redis_url) == redis_before

        # The same counters do see a route that needs the database.
        statements.mark()
        assert (await http.get("/api/users/profile", headers=account.auth)).status_code == 200
        await anyio.sleep(0.5)
        assert len(statements.statements_since_mark()) >= 1


async def test_the_rate_limiter_syncs_in_batches_not_per_request(
    counted_services: tuple[StatementLog, str],
) -> None:
    """With the limiter on, Redis sees at most one flush per interval, however many requests."""
    statements, redis_url = counted_services
    server = _counted_server(statements, redis_url, RATE_LIMIT_FLUSH_SECONDS="0.1")
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            account = await register(http)
            await anyio.sleep(0.5)
            statements.mark()
            before = _commands(redis_url)
            started = anyio.current_time()
            for _ in range(600):
                assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 200
            elapsed = anyio.current_time() - started
            await anyio.sleep(0.3)
            after = _commands(redis_url)
        assert statements.statements_since_mark() == []
        flushes = after.get("evalsha", 0) - before.get("evalsha", 0)
        assert 1 <= flushes <= (elapsed + 0.3) / 0.1 + 2
        assert flushes < 600 / 5
    finally:
        server.stop()
