"""Probes for the health actor: PostgreSQL, Redis, memory, and downstream HTTP services."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import anyio
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


def service_probe(name: str, url: str) -> Probe:
    """GET `url` over HTTP/1.1 on a fresh connection; a 2xx status line is up, anything else
    down. The health actor's deadline bounds the whole exchange."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = parts.netloc.rsplit("@", 1)[-1]
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: sevenp-health\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    context = ssl.create_default_context() if secure else None

    async def check() -> str | None:
        stream = (
            await anyio.connect_tcp(host, port)
            if context is None
            else await anyio.connect_tcp(
                host, port, ssl_context=context, tls_standard_compatible=False
            )
        )
        async with stream:
            await stream.send(request)
            head = b""
            while b"\r\n" not in head and len(head) < 1024:
                head += await stream.receive()
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        if not 200 <= int(fields[1]) < 300:
            raise ValueError(f"answered {status_line[:80]}")
        return None

    return Probe(name, check, required=False)
