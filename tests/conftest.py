"""Session-wide real services: PostgreSQL and Redis, and live servers on them."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.db.migrate import apply_migrations
from tests.support.accounts import GOOD_PASSWORD, Account, create_user_cli, login, unique_email
from tests.support.courses import make_teacher
from tests.support.live_server import LiveServer
from tests.support.services import postgres_server, redis_server, throwaway_database


@pytest.fixture
def anyio_backend() -> str:
    """asyncio by default; actor-runtime modules run under trio too."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A throwaway database for this run, migrated."""
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def mail_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sevenp-mail-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def live_server(database_url: str, redis_url: str, mail_dir: Path) -> Iterator[LiveServer]:
    server = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MAIL_URL": f"file://{mail_dir}",
        }
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def second_server(database_url: str, redis_url: str, mail_dir: Path) -> Iterator[LiveServer]:
    """Another instance on the same PostgreSQL and Redis, as a scaled-out deployment runs."""
    server = LiveServer(
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "MAIL_URL": f"file://{mail_dir}"}
    ).start()
    yield server
    server.stop()


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def admin_email(live_server: LiveServer) -> str:
    email = unique_email("admin")
    result = create_user_cli({**os.environ, **live_server.env}, email=email, role="admin")
    assert result.returncode == 0, result.stderr
    return email


@pytest.fixture
async def admin(http: httpx.AsyncClient, admin_email: str) -> Account:
    return await login(http, admin_email, GOOD_PASSWORD)


@pytest.fixture
async def teacher(http: httpx.AsyncClient, admin: Account) -> Account:
    """A new teacher, promoted by an admin."""
    return await make_teacher(http, admin)


@pytest.fixture(scope="session")
def teacher_email(live_server: LiveServer) -> str:
    email = unique_email("teacher")
    result = create_user_cli({**os.environ, **live_server.env}, email=email, role="teacher")
    assert result.returncode == 0, result.stderr
    return email
