"""Dependency probes for the health actor: PostgreSQL, Redis and memory."""

from __future__ import annotations

import psutil
import psycopg
import redis.asyncio as aioredis

from actors.health import Probe
from server.db.pool import Pool


def postgres_probe(database_url: str, pool: Pool, timeout: float) -> Probe:
    """Probes on a fresh connection, so a stale pool never hides a recovery."""

    async def check() -> str | None:
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=max(1, int(timeout))
        )
        async with conn:
            await conn.execute("SELECT 1")
        stats = pool.get_stats()
        if stats.get("requests_waiting", 0) > pool.max_waiting // 2:
            return "connection pool saturated"
        return None

    async def on_recovery() -> None:
        await pool.check()

    return Probe("postgres", check, required=True, on_recovery=on_recovery)


def redis_probe(client: aioredis.Redis) -> Probe:
    async def check() -> str | None:
        await client.ping()
        return None

    # Not required: sessions and rate limits degrade to PostgreSQL and local buckets without it.
    return Probe("redis", check, required=False)


def memory_probe(limit_mb: int) -> Probe:
    process = psutil.Process()

    async def check() -> str | None:
        rss_mb = process.memory_info().rss / 1_048_576
        if rss_mb > limit_mb:
            return f"resident memory {rss_mb:.0f} MB above {limit_mb} MB"
        return None

    return Probe("memory", check, required=False)
