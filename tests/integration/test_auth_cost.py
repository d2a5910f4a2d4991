"""Authenticating a request costs no SQL statement and no Redis command (API.md, GET /auth/me)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest
import redis
from psycopg import sql

from server.db.migrate import apply_migrations
from server.services.provisioning import create_user
from server.settings import load_settings
from tests.support.accounts import GOOD_PASSWORD, Account, login, unique_email
from tests.support.live_server import LiveServer
from tests.support.services import redis_server_process
from tests.support.waiting import eventually

_BARRIER = "sevenp-test-barrier"

# Connection upkeep, not work done for a request.
_QUIET = {"ping", "info", "client", "client|setinfo", "client|setname", "hello"}


class StatementLog:
    """An embedded PostgreSQL that logs every statement, and a cursor into that log.

    The cursor moves to a statement of ours (a barrier) once the log shows it, so whatever
    reached PostgreSQL before it is in the log before it, however the log is written.
    """

    def __init__(self, data: Path) -> None:
        from pgserver.postgres_server import get_server

        self.server = get_server(data, cleanup_mode="stop")
        self.url = self.server.get_uri("postgres")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("ALTER DATABASE postgres SET log_statement = 'all'")
        self._log = data / "log"
        self._offset = 0

    async def mark(self) -> None:
        self._offset = await self._barrier()

    async def statements_since_mark(self) -> list[str]:
        end = await self._barrier()
        text = self._read(self._offset, end)
        return [
            line
            for line in text.splitlines()
            if ("statement:" in line or "execute" in line) and _BARRIER not in line
        ]

    async def _barrier(self) -> int:
        """Log a statement of ours; return the log's offset just past it."""
        tag = f"{_BARRIER} {uuid.uuid4().hex}"
        start = self._log.stat().st_size
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("SELECT {}").format(sql.Literal(tag)))
        await eventually(lambda: tag in self._read(start), within=5)
        text = self._read(start)
        return start + len(text[: text.index("\n", text.index(tag)) + 1].encode())

    def _read(self, start: int, end: int | None = None) -> str:
        with self._log.open("rb") as log:
            log.seek(start)
            data = log.read() if end is None else log.read(end - start)
        return data.decode(errors="replace")


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


async def _account(http: httpx.AsyncClient, database_url: str) -> Account:
    """An account made in the database, then logged in: registering would queue a mail, which
    the server then sends in the background while these tests count statements."""
    email = unique_email()
    await create_user(
        database_url, email=email, password=GOOD_PASSWORD, first_name="Ada",
        last_name="Lovelace", role="student", settings=load_settings({"SEVENP_ENV": "test"}),
    )  # fmt: skip
    return await login(http, email)


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
        account = await _account(http, statements.url)
        await statements.mark()
        redis_before = _commands(redis_url)
        for _ in range(200):
            response = await http.get("/api/auth/me", headers=account.auth)
            assert response.status_code == 200
        assert await statements.statements_since_mark() == []
        assert _commands(redis_url) == redis_before

        # The same counters do see a route that needs the database.
        await statements.mark()
        assert (await http.get("/api/users/profile", headers=account.auth)).status_code == 200
        assert len(await statements.statements_since_mark()) >= 1


async def test_the_rate_limiter_syncs_in_batches_not_per_request(
    counted_services: tuple[StatementLog, str],
) -> None:
    """With the limiter on, Redis sees at most one flush per interval, however many requests."""
    statements, redis_url = counted_services
    server = _counted_server(statements, redis_url, RATE_LIMIT_FLUSH_SECONDS="0.1")
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            account = await _account(http, statements.url)
            await statements.mark()
            before = _commands(redis_url)
            started = anyio.current_time()
            for _ in range(600):
                assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 200

            def flushed() -> bool:
                return _commands(redis_url).get("evalsha", 0) > before.get("evalsha", 0)

            await eventually(flushed, within=5, poll=0.05)
            after = _commands(redis_url)
            elapsed = anyio.current_time() - started
        assert await statements.statements_since_mark() == []
        flushes = after.get("evalsha", 0) - before.get("evalsha", 0)
        assert 1 <= flushes <= elapsed / 0.1 + 2
        assert flushes < 600 / 5
    finally:
        server.stop()
