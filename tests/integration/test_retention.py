"""Retention on real PostgreSQL: rows that ended beyond the horizon go, younger ones stay.

A private migrated database: a live server's own retention actor must not race these tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from actors.retention import RetentionActor
from server.db.migrate import apply_migrations
from server.db.queries.retention import PURGES
from server.db.retention import PostgresRetention
from server.db.unit import Database
from tests.support.services import throwaway_database
from tests.support.waiting import eventually

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]
DAY = 86400.0
HORIZON = 30 * DAY


@pytest.fixture(scope="module")
def retention_database_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        yield url


@pytest.fixture
async def pool(retention_database_url: str) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        retention_database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True, timeout=10)
    try:
        yield pool
    finally:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM users")
            await conn.execute("DELETE FROM mail_outbox")
            await conn.execute("DROP TABLE IF EXISTS idempotency_keys")
        await pool.close()


async def _values(pool: Pool, query: str, *params: object) -> list[Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return [row[0] for row in await cur.fetchall()]


async def _user(pool: Pool) -> uuid.UUID:
    (user_id,) = await _values(
        pool,
        "INSERT INTO users (email, password_hash, first_name, last_name)"
        " VALUES (%s, 'x', 'A', 'B') RETURNING id",
        f"r-{uuid.uuid4().hex[:12]}@example.test",
    )
    assert isinstance(user_id, uuid.UUID)
    return user_id


async def _session(pool: Pool, user: uuid.UUID, *, revoked: str | None, expires: str) -> str:
    """A session with one current and one rotated refresh token; times are SQL intervals."""
    (session,) = await _values(
        pool,
        "INSERT INTO sessions (user_id, expires_at, revoked_at)"
        " VALUES (%s, now() + %s::interval, now() + %s::interval) RETURNING id::text",
        user,
        expires,
        revoked,
    )
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, rotated_at) VALUES"
            " (gen_random_uuid()::text::bytea, %s, now() - interval '40 days'),"
            " (gen_random_uuid()::text::bytea, %s, NULL)",
            (session, session),
        )
    assert isinstance(session, str)
    return session


async def _one_time(pool: Pool, user: uuid.UUID, *, used: str | None, expires: str) -> str:
    (token,) = await _values(
        pool,
        "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at, used_at)"
        " VALUES (gen_random_uuid()::text::bytea, %s, 'password_reset',"
        " now() + %s::interval, now() + %s::interval) RETURNING encode(token_hash, 'escape')",
        user,
        expires,
        used,
    )
    assert isinstance(token, str)
    return token


async def _mail(pool: Pool, *, sent: str | None, created: str, given_up: bool = False) -> int:
    (mail_id,) = await _values(
        pool,
        "INSERT INTO mail_outbox (recipient, subject, body, created_at, sent_at, next_attempt_at)"
        " VALUES ('m@example.test', 's', 'b', now() + %s::interval, now() + %s::interval,"
        " CASE WHEN %s THEN 'infinity'::timestamptz ELSE now() END) RETURNING id",
        created,
        sent,
        given_up,
    )
    assert isinstance(mail_id, int)
    return mail_id


def _actor(pool: Pool, *, batch_size: int = 1000) -> RetentionActor:
    return RetentionActor(
        store=PostgresRetention(Database(pool)),
        horizon_seconds=HORIZON,
        interval=3600,
        batch_size=batch_size,
    )


async def test_rows_that_ended_beyond_the_horizon_go_and_younger_ones_stay(pool: Pool) -> None:
    user = await _user(pool)
    await _session(pool, user, revoked="-31 days", expires="-20 days")
    await _session(pool, user, revoked=None, expires="-31 days")
    young_revoked = await _session(pool, user, revoked="-29 days", expires="+1 day")
    young_expired = await _session(pool, user, revoked=None, expires="-29 days")
    live = await _session(pool, user, revoked=None, expires="+5 days")

    await _one_time(pool, user, used="-31 days", expires="-31 days")
    await _one_time(pool, user, used=None, expires="-31 days")
    used_young = await _one_time(pool, user, used="-1 day", expires="+1 hour")
    pending = await _one_time(pool, user, used=None, expires="+1 hour")

    await _mail(pool, sent="-31 days", created="-31 days")
    sent_young = await _mail(pool, sent="-29 days", created="-29 days")
    await _mail(pool, sent=None, created="-91 days", given_up=True)
    given_up_young = await _mail(pool, sent=None, created="-60 days", given_up=True)
    unsent_old = await _mail(pool, sent=None, created="-200 days")

    deleted = await _actor(pool).run_round()

    assert set(deleted) == {p.name for p in PURGES}
    sessions = await _values(pool, "SELECT id::text FROM sessions")
    assert sorted(sessions) == sorted([young_revoked, young_expired, live])
    kept_refresh = await _values(pool, "SELECT session_id::text FROM refresh_tokens")
    # every kept session keeps both tokens, the one rotated 40 days ago included
    assert sorted(kept_refresh) == sorted(2 * [young_revoked, young_expired, live])
    tokens = await _values(pool, "SELECT encode(token_hash, 'escape') FROM one_time_tokens")
    assert sorted(tokens) == sorted([used_young, pending])
    mails = await _values(pool, "SELECT id FROM mail_outbox")
    assert sorted(mails) == sorted([sent_young, given_up_young, unsent_old])
    assert deleted["retention.sessions"] == 2
    assert deleted["retention.refresh_tokens"] == 4
    assert deleted["retention.idempotency_keys"] == 0  # no such table yet: skipped

    assert set((await _actor(pool).run_round()).values()) == {0}


async def test_expired_idempotency_keys_go_once_their_table_exists(pool: Pool) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE TABLE idempotency_keys (id bytea PRIMARY KEY, expires_at timestamptz NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO idempotency_keys VALUES ('\\x01', now() - interval '1 second'),"
            " ('\\x02', now() + interval '1 hour')"
        )
    deleted = await _actor(pool).run_round()
    assert deleted["retention.idempotency_keys"] == 1
    assert await _values(pool, "SELECT id FROM idempotency_keys") == [b"\x02"]


async def test_a_purge_deletes_in_batches_of_at_most_the_batch_size(pool: Pool) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO mail_outbox (recipient, subject, body, sent_at)"
            " SELECT 'm@example.test', 's', 'b', now() - interval '31 days'"
            " FROM generate_series(1, 2500)"
        )
    store = PostgresRetention(Database(pool))
    batches = [
        await store.purge("retention.sent_mail", horizon_seconds=HORIZON, limit=1000)
        for _ in range(4)
    ]
    assert batches == [1000, 1000, 500, 0]

    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO mail_outbox (recipient, subject, body, sent_at)"
            " SELECT 'm@example.test', 's', 'b', now() - interval '31 days'"
            " FROM generate_series(1, 250)"
        )
    actor = _actor(pool, batch_size=100)
    assert (await actor.run_round())["retention.sent_mail"] == 250
    assert await _values(pool, "SELECT count(*) FROM mail_outbox") == [0]


async def test_a_purge_skips_rows_another_transaction_holds(
    pool: Pool, retention_database_url: str
) -> None:
    held = await _mail(pool, sent="-31 days", created="-31 days")
    free = await _mail(pool, sent="-31 days", created="-31 days")
    async with await psycopg.AsyncConnection.connect(retention_database_url) as other:
        await other.execute("SELECT 1 FROM mail_outbox WHERE id = %s FOR UPDATE", (held,))
        deleted = await _actor(pool).run_round()
        assert deleted["retention.sent_mail"] == 1
        await other.rollback()
    assert await _values(pool, "SELECT id FROM mail_outbox") == [held]
    assert free != held


async def test_the_actor_purges_at_start_and_stops_when_asked(pool: Pool) -> None:
    await _mail(pool, sent="-31 days", created="-31 days")
    actor = _actor(pool)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)

        async def purged() -> bool:
            return actor.details()["rounds"] == 1

        await eventually(purged, within=10, poll=0.02)
        assert actor.request_stop()
    assert await _values(pool, "SELECT count(*) FROM mail_outbox") == [0]
    assert actor.details()["deleted"] == {p.name: 0 for p in PURGES} | {"retention.sent_mail": 1}
