"""The unit of work's deadline and its refusal of a database known to be down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from psycopg_pool import AsyncConnectionPool

from server.db.pool import Pool
from server.db.statement import Statement
from server.db.unit import Database, DatabaseUnavailable

SLEEP = Statement("test.sleep", "SELECT pg_sleep(%(seconds)s)")
ONE = Statement("test.one", "SELECT 1")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        database_url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_statement_past_the_budget_times_out_and_its_connection_is_dropped(
    pool: Pool,
) -> None:
    database = Database(pool, budget_seconds=0.3)
    started = anyio.current_time()
    with pytest.raises(TimeoutError):
        async with database.unit() as uow:
            await uow.value(SLEEP, {"seconds": 30})
    assert anyio.current_time() - started < 2
    for autocommit in (False, True):
        async with database.unit(autocommit=autocommit) as uow:
            assert await uow.value(ONE, None) == 1
    assert pool.get_stats()["pool_size"] <= 2


async def test_units_of_one_request_share_its_deadline(pool: Pool) -> None:
    database = Database(pool, budget_seconds=0.5)
    with database.request_budget():
        async with database.unit() as uow:
            await uow.value(SLEEP, {"seconds": 0.3})
        with pytest.raises(TimeoutError):
            async with database.unit() as uow:
                await uow.value(SLEEP, {"seconds": 0.3})
    async with database.unit() as uow:
        await uow.value(SLEEP, {"seconds": 0.3})


async def test_a_database_known_down_is_refused_without_taking_a_connection(pool: Pool) -> None:
    down = [True]
    database = Database(pool, budget_seconds=5, available=lambda: not down[0])
    requests_before = pool.get_stats().get("requests_num", 0)
    started = anyio.current_time()
    with pytest.raises(DatabaseUnavailable):
        async with database.unit() as uow:
            await uow.value(ONE, None)
    assert anyio.current_time() - started < 0.1
    assert pool.get_stats().get("requests_num", 0) == requests_before
    async with database.unit():
        pass  # a unit that runs no statement never asks
    down[0] = False
    async with database.unit() as uow:
        assert await uow.value(ONE, None) == 1


async def test_an_error_in_the_block_rolls_back_and_returns_an_idle_connection(
    pool: Pool,
) -> None:
    database = Database(pool)
    table = Statement("test.temp", "CREATE TEMP TABLE IF NOT EXISTS unit_probe (n int)")

    async def fail_inside() -> None:
        async with database.unit() as uow:
            await uow.execute(table, None)
            raise LookupError

    with pytest.raises(LookupError):
        await fail_inside()
    async with pool.connection() as conn:
        assert conn.info.transaction_status.name == "IDLE"


async def test_after_commit_actions_finish_when_the_caller_is_cancelled(pool: Pool) -> None:
    database = Database(pool)
    announcing, announced = anyio.Event(), anyio.Event()

    async def announce() -> None:
        announcing.set()
        await anyio.sleep(0.1)
        announced.set()

    async def request() -> None:
        async with database.unit() as uow:
            await uow.value(ONE, None)
            uow.after_commit(announce)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await announcing.wait()
        tg.cancel_scope.cancel()
    assert announced.is_set()
