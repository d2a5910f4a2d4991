"""The audit actor on a real PostgreSQL: a graceful stop writes everything it holds."""

from __future__ import annotations

import uuid

import anyio
import psycopg

from actors.audit import AuditActor, AuditRecord
from actors.supervisor import Supervisor
from server.db.audit import PostgresAuditSink
from server.db.pool import create_pool
from server.db.unit import Database
from server.settings import load_settings


async def _count(database_url: str, marker: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM audit_log WHERE details ->> 'marker' = %s", (marker,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_graceful_stop_flushes_every_queued_event(database_url: str) -> None:
    settings = load_settings({"DATABASE_URL": database_url})
    pool = create_pool(settings, database_url)
    await pool.open(wait=True)
    marker = uuid.uuid4().hex
    # Neither the interval nor the batch size is reached: only the stop writes them.
    actor = AuditActor(
        PostgresAuditSink(Database(pool)), flush_seconds=3600, batch_rows=1000, capacity=2000
    )
    supervisor = Supervisor("test", [actor])
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            for n in range(250):
                assert actor.submit(
                    AuditRecord(
                        action="test.flush_on_stop",
                        outcome="failure",
                        address="198.51.100.7",
                        details={"marker": marker, "n": n},
                    )
                )
            assert actor.mailbox_depth() == 250
            assert await _count(database_url, marker) == 0
            await supervisor.stop()
    finally:
        await pool.close()
    assert await _count(database_url, marker) == 250
    assert actor.details()["written"] == 250


async def test_a_full_queue_drops_and_counts_instead_of_blocking(database_url: str) -> None:
    settings = load_settings({"DATABASE_URL": database_url})
    pool = create_pool(settings, database_url)
    actor = AuditActor(PostgresAuditSink(Database(pool)), batch_rows=2, capacity=3)
    record = AuditRecord(action="test.full_queue", outcome="denied")
    assert [actor.submit(record) for _ in range(5)] == [True, True, True, False, False]
    assert actor.details()["dropped"] == 2
    assert actor.mailbox_depth() == 3
