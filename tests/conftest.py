"""Session-wide real services: PostgreSQL and Redis, and a live server on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from server.db.migrate import apply_migrations
from tests.support.live_server import LiveServer
from tests.support.services import postgres_server, redis_server, throwaway_database


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
def live_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer({"DATABASE_URL": database_url, "REDIS_URL": redis_url}).start()
    yield server
    server.stop()


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client
