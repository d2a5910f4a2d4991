"""A private PostgreSQL stopped and frozen under a live server: every request that needs it
gets a 503 within the request's budget, at once once health knows, and all works again after."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from server.db.migrate import apply_migrations
from tests.support.accounts import Account, register
from tests.support.live_server import LiveServer
from tests.support.services import PrivatePostgres, private_postgres
from tests.support.waiting import eventually

BUDGET = 2.0
SLACK = 1.5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faulty() -> Iterator[tuple[PrivatePostgres, LiveServer]]:
    with private_postgres() as pg:
        anyio.run(apply_migrations, pg.url)
        server = LiveServer(
            {"DATABASE_URL": pg.url, "DB_TIMEOUT_SECONDS": str(BUDGET), "DB_POOL_MIN": "4"}
        ).start()
        try:
            yield pg, server
        finally:
            server.stop()


async def _profiles(http: httpx.AsyncClient, account: Account, n: int) -> list[httpx.Response]:
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(await http.get("/api/users/profile", headers=account.auth))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return answers


async def _outage(http: httpx.AsyncClient, account: Account) -> None:
    """While the database is out: bounded 503s, then immediate ones, and no cascade."""
    for response in await _profiles(http, account, 8):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert response.elapsed.total_seconds() < BUDGET + SLACK

    async def not_ready() -> bool:
        return (await http.get("/health/ready")).status_code == 503

    await eventually(not_ready, within=5, poll=0.05)
    for response in await _profiles(http, account, 8):
        assert response.status_code == 503
        assert response.elapsed.total_seconds() < 0.5
    me = await http.get("/api/auth/me", headers=account.auth)
    assert me.status_code == 200


async def _recovered(http: httpx.AsyncClient, account: Account) -> None:
    async def profile_answers() -> bool:
        return (await http.get("/api/users/profile", headers=account.auth)).status_code == 200

    await eventually(profile_answers, within=15, poll=0.1)
    assert all(r.status_code == 200 for r in await _profiles(http, account, 8))


async def test_a_frozen_database_holds_no_request_past_its_budget(
    faulty: tuple[PrivatePostgres, LiveServer],
) -> None:
    pg, server = faulty
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        account = await register(http)
        await anyio.to_thread.run_sync(pg.freeze)
        try:
            await _outage(http, account)
        finally:
            await anyio.to_thread.run_sync(pg.thaw)
        await _recovered(http, account)


async def test_a_stopped_database_is_answered_at_once_once_health_knows(
    faulty: tuple[PrivatePostgres, LiveServer],
) -> None:
    pg, server = faulty
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        account = await register(http)
        await anyio.to_thread.run_sync(pg.stop)
        try:
            await _outage(http, account)
        finally:
            await anyio.to_thread.run_sync(pg.start)
        await _recovered(http, account)
