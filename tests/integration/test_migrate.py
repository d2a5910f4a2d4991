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


async def test_queued_tokens_move_out_of_mail_bodies_and_sent_ones_are_dropped(
    postgres_admin_url: str,
) -> None:
    pending_token, sent_token = "P" * 43, "S" * 43
    with throwaway_database(postgres_admin_url) as url:
        await apply_migrations(url, [m for m in bundled_migrations() if m.version < 6])
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO mail_outbox (recipient, subject, body, sent_at) VALUES"
                " ('a@example.test', 's', %s, NULL), ('b@example.test', 's', %s, now()),"
                " ('c@example.test', 's', 'Hello,\n\nno token here\n', NULL)",
                (f"Hi,\n\n{pending_token}\n\nbye\n", f"Hi,\n\n{sent_token}\n\nbye\n"),
            )
            await apply_migrations(url)
            cur = await conn.execute("SELECT recipient, body, secret FROM mail_outbox ORDER BY 1")
            assert await cur.fetchall() == [
                ("a@example.test", "Hi,\n\n{token}\n\nbye\n", pending_token),
                ("b@example.test", "Hi,\n\n{token}\n\nbye\n", None),
                ("c@example.test", "Hello,\n\nno token here\n", None),
            ]
