"""Migrations: applied once, in order, each in a transaction, safe under concurrent starts."""

from __future__ import annotations

import anyio
import psycopg
import pytest

from server.db.migrate import Migration, apply_migrations, bundled_migrations
from tests.support.services import throwaway_database


def test_bundled_migrations_are_numbered_and_ordered() -> None:
    versions = [m.version for m in bundled_migrations()]
    assert versions == sorted(versions)
    assert versions[0] == 1


async def test_concurrent_starts_apply_each_migration_once(postgres_admin_url: str) -> None:
    with throwaway_database(postgres_admin_url) as url:
        results: list[list[int]] = []

        async def start() -> None:
            results.append(await apply_migrations(url))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(start)
        expected = [m.version for m in bundled_migrations()]
        assert sorted(v for r in results for v in r) == expected
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [row[0] for row in await cur.fetchall()] == expected
        assert await apply_migrations(url) == []


async def test_a_failing_migration_leaves_nothing_behind(postgres_admin_url: str) -> None:
    with throwaway_database(postgres_admin_url) as url:
        broken = [
            Migration(1, "ok", "CREATE TABLE kept (id int)"),
            Migration(2, "broken", "CREATE TABLE half (id int); SELECT no_such_function()"),
        ]
        with pytest.raises(psycopg.errors.UndefinedFunction):
            await apply_migrations(url, broken)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute("SELECT version FROM schema_migrations")
            assert [row[0] for row in await cur.fetchall()] == [1]
            cur = await conn.execute("SELECT to_regclass('half') IS NULL, to_regclass('kept')")
            assert await cur.fetchone() == (True, "kept")
