"""Read routing (`server.db.replica`) with a read pool on the primary's own database: where
read units run, that they refuse writes, read-your-writes by WAL position, the lag bound, and
the fallback to the primary when the read server cannot be reached."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest

from server.db.migrate import apply_migrations
from server.db.pool import Pool, create_pool
from server.db.replica import ReadRouting, replica_probe
from server.db.statement import Statement
from server.db.streaming import snapshot
from server.db.unit import Database
from server.settings import Settings
from tests.support.accounts import create_user_cli, login, unique_email
from tests.support.courses import create_course
from tests.support.live_server import LiveServer
from tests.support.services import free_port, throwaway_database

APPLICATION = Statement("test.application", "SELECT current_setting('application_name')")
READ_ONLY = Statement("test.read_only", "SELECT current_setting('transaction_read_only')")
WRITE = Statement("test.write", "INSERT INTO replica_marks (note) VALUES (%(note)s)")
NOTES = Statement("test.notes", "SELECT count(*) FROM replica_marks")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE replica_marks (id serial PRIMARY KEY, note text)")
        yield url


def _settings(url: str, read_url: str) -> Settings:
    return Settings(
        database_url=url,
        database_read_url=read_url,
        db_pool_min=1,
        db_pool_max=2,
        db_timeout_seconds=2.0,
    )


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[tuple[Pool, Pool]]:
    settings = _settings(database_url, database_url)
    primary = create_pool(settings, database_url)
    reads = create_pool(settings, database_url, reads=True)
    await primary.open(wait=True)
    await reads.open(wait=True)
    try:
        yield primary, reads
    finally:
        await reads.close()
        await primary.close()


async def _probed(routing: ReadRouting, read_url: str, primary_url: str) -> str | None:
    return await replica_probe(routing, read_url, primary_url, 2.0).check()


async def test_reads_run_read_only_on_the_read_pool_and_writes_on_the_primary(
    pools: tuple[Pool, Pool], database_url: str
) -> None:
    primary, reads = pools
    routing = ReadRouting(reads, max_lag_seconds=5)
    database = Database(primary, replica=routing)
    async with database.read_unit("reader") as uow:
        assert await uow.value(APPLICATION, None) == "sevenp"
    assert uow.server == "primary", "before its first probe the replica serves no read"
    assert await _probed(routing, database_url, database_url) is None
    async with database.read_unit("reader") as uow:
        assert await uow.value(APPLICATION, None) == "sevenp-reads"
        assert await uow.value(READ_ONLY, None) == "on"
    assert (uow.server, uow.statements) == ("replica", ["test.application", "test.read_only"])
    async with snapshot(database, "reader") as snap:
        assert snap.server == "replica"
    async with database.unit() as uow:
        assert await uow.value(APPLICATION, None) == "sevenp"
        assert await uow.value(READ_ONLY, None) == "off"
    assert uow.server == "primary"


@pytest.mark.parametrize("with_replica", [True, False])
async def test_a_read_unit_refuses_writes_on_either_server(
    pools: tuple[Pool, Pool], database_url: str, with_replica: bool
) -> None:
    primary, reads = pools
    routing = ReadRouting(reads, max_lag_seconds=5)
    database = Database(primary, replica=routing if with_replica else None)
    await _probed(routing, database_url, database_url)
    async with database.unit() as uow:
        before = await uow.value(NOTES, None)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        async with database.read_unit("reader") as uow:
            await uow.execute(WRITE, {"note": "refused"})
    assert uow.server == ("replica" if with_replica else "primary")
    if with_replica:
        # Without a transaction, the read pool's sessions still refuse (on the primary an
        # autocommit read unit is only as read-only as its statements).
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            async with database.read_unit("reader", autocommit=True) as uow:
                await uow.execute(WRITE, {"note": "refused"})
    async with database.unit() as uow:
        assert await uow.value(NOTES, None) == before


async def test_a_writer_reads_the_primary_until_the_replica_has_replayed_the_write(
    pools: tuple[Pool, Pool], database_url: str
) -> None:
    primary, reads = pools
    routing = ReadRouting(reads, max_lag_seconds=5)
    database = Database(primary, replica=routing)
    await _probed(routing, database_url, database_url)
    async with database.unit(writer="writer") as uow:
        await uow.execute(WRITE, {"note": "mine"})
    assert uow.written_position is not None
    assert uow.written_position > routing.replayed
    async with database.read_unit("writer") as mine, database.read_unit("other") as theirs:
        await mine.value(NOTES, None)
        await theirs.value(NOTES, None)
    assert (mine.server, theirs.server) == ("primary", "replica")
    assert routing.pending() == 1
    # A unit that ran no statement, or a reader's, leaves no mark.
    async with database.unit(writer="idle") as idle:
        pass
    assert idle.written_position is None
    assert routing.pending() == 1

    await _probed(routing, database_url, database_url)
    assert routing.replayed >= uow.written_position
    assert routing.pending() == 0
    async with database.read_unit("writer") as mine:
        await mine.value(NOTES, None)
    assert mine.server == "replica"
    assert routing.reads["primary", "recent_write"] == 1


async def test_a_replica_past_the_lag_bound_serves_no_reads(
    pools: tuple[Pool, Pool], database_url: str
) -> None:
    primary, reads = pools
    routing = ReadRouting(reads, max_lag_seconds=5)
    database = Database(primary, replica=routing)
    await _probed(routing, database_url, database_url)
    reason = routing.probed(routing.replayed, 6.0)
    assert reason is not None
    assert "6.0s behind" in reason
    async with database.read_unit(None) as uow:
        await uow.value(NOTES, None)
    assert uow.server == "primary"
    assert routing.reads["primary", "replica_lagging"] == 1
    assert await _probed(routing, database_url, database_url) is None
    async with database.read_unit(None) as uow:
        await uow.value(NOTES, None)
    assert uow.server == "replica"


async def test_a_broken_read_connection_hands_the_read_to_the_primary(
    pools: tuple[Pool, Pool], database_url: str
) -> None:
    primary, reads = pools
    routing = ReadRouting(reads, max_lag_seconds=5)
    database = Database(primary, replica=routing)
    await _probed(routing, database_url, database_url)
    async with primary.connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'sevenp-reads' AND datname = current_database()"
        )
    async with database.read_unit("reader") as uow:
        assert await uow.value(APPLICATION, None) == "sevenp"
    assert uow.server == "primary"
    assert routing.unusable is not None
    assert "connection failed" in routing.unusable
    assert routing.reads["primary", "replica_failed"] == 1
    assert await _probed(routing, database_url, database_url) is None
    async with database.read_unit("reader") as uow:
        assert await uow.value(APPLICATION, None) == "sevenp-reads"


async def test_an_unreachable_read_server_is_probed_down_and_reads_go_to_the_primary(
    database_url: str,
) -> None:
    dead = f"postgresql://127.0.0.1:{free_port()}/none?connect_timeout=1"
    settings = _settings(database_url, dead)
    primary = create_pool(settings, database_url)
    reads = create_pool(settings, dead, reads=True)
    await primary.open(wait=True)
    await reads.open(wait=False)
    try:
        routing = ReadRouting(reads, max_lag_seconds=5)
        database = Database(primary, budget_seconds=2.0, replica=routing)
        with pytest.raises(psycopg.OperationalError):
            await _probed(routing, dead, database_url)
        assert routing.unusable is not None
        assert routing.unusable.startswith("replica down")
        async with database.read_unit("reader") as uow:
            assert await uow.value(APPLICATION, None) == "sevenp"
        assert routing.reads["primary", "replica_down"] == 1
        # Last probed fine, since gone: the read waits half its budget for the replica, then
        # runs on the primary.
        routing.probed(routing.replayed, 0.0)
        async with database.read_unit("reader") as uow:
            assert await uow.value(APPLICATION, None) == "sevenp"
        assert uow.server == "primary"
    finally:
        await reads.close()
        await primary.close()


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    """A live server whose read URL names its own database; probed once at start, then not
    for long, so that every write in a test stays ahead of the replay position it knows."""
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_READ_URL": database_url,
        "REDIS_URL": redis_url,
        "HEALTH_INTERVAL_SECONDS": "60",
    }
    server = LiveServer(env).start()
    try:
        yield server
    finally:
        server.stop()


def _reads_counted(scrape: str) -> dict[str, float]:
    counted: dict[str, float] = {}
    for line in scrape.splitlines():
        if line.startswith("sevenp_db_reads_total{"):
            labels, value = line.rsplit(" ", 1)
            server = "replica" if 'db_read_server="replica"' in labels else "primary"
            reason = (
                labels.split('db_read_reason="', 1)[1].split('"', 1)[0]
                if "reason" in labels
                else ""
            )
            key = f"{server}:{reason}" if reason else server
            counted[key] = counted.get(key, 0.0) + float(value)
    return counted


async def test_a_live_server_routes_reads_and_keeps_a_writers_reads_on_the_primary(
    server: LiveServer, database_url: str
) -> None:
    cli_env = {**os.environ, **server.env}
    emails = {role: unique_email(role) for role in ("admin", "teacher")}
    for role, email in emails.items():
        assert create_user_cli(cli_env, email=email, role=role).returncode == 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
        admin, teacher = await login(http, emails["admin"]), await login(http, emails["teacher"])
        report = (await http.get("/api/system/health", headers=admin.auth)).json()
        replica = next(c for c in report["checks"] if c["name"] == "postgres_replica")
        assert replica["status"] == "up"
        before = _reads_counted((await http.get("/metrics")).text)

        course = await create_course(http, teacher)
        mine = await http.get("/api/courses", headers=teacher.auth, params={"status": "draft"})
        assert course["id"] in [c["id"] for c in mine.json()["items"]]
        overview = await http.get("/api/analytics/overview", headers=admin.auth)
        assert overview.status_code == 200

        after = _reads_counted((await http.get("/metrics")).text)
        assert after.get("primary:recent_write", 0) - before.get("primary:recent_write", 0) >= 1
        assert after.get("replica", 0) - before.get("replica", 0) >= 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        named = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sevenp-reads'"
            " AND datname = current_database()"
        ).fetchone()
    assert named is not None
    assert named[0] >= 1
