"""The psycopg connection pool, opened and closed by the app's lifespan."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from server.settings import Settings

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


def create_pool(settings: Settings, database_url: str, *, reads: bool = False) -> Pool:
    """A closed pool; the lifespan opens it with `await pool.open(wait=...)`.

    `reads` makes the read replica's pool: its sessions refuse writes by default and name
    themselves `sevenp-reads` (in `pg_stat_activity`).

    No `check=` callback: it would cost a round trip per checkout on the hot
    path. Broken connections are discarded when returned, and the health actor
    calls `pool.check()` when the database comes back after an outage.
    """
    options = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    if reads:
        options += " -c default_transaction_read_only=on"
    return AsyncConnectionPool(
        database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        max_waiting=settings.db_pool_max_waiting,
        timeout=settings.db_timeout_seconds,
        reconnect_timeout=60.0,
        open=False,
        kwargs={
            "autocommit": True,
            "connect_timeout": max(1, int(settings.db_timeout_seconds)),
            "options": options,
            "application_name": "sevenp-reads" if reads else "sevenp",
        },
        name="sevenp-reads" if reads else "sevenp",
    )
