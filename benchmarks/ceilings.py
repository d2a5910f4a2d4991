"""Ceiling apps and measurements: the best a route of each kind can do on this machine.

Each ASGI ceiling is a factory Granian loads with ``--factory`` (``benchmarks.ceilings:json_app``,
``:select_app``, ``:update_app``, ``:row_update_app``), so it is served exactly like the server
under test. The DB
ceilings read ``SEVENP_BENCH_DSN`` and ``SEVENP_BENCH_SCHEMA`` (see ``ceiling_db``). The argon2
ceiling is measured in-process: logins/s = cores / one argon2id verify time.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgspec
from litestar import Litestar, get, post, put
from litestar.handlers import HTTPRouteHandler
from psycopg_pool import AsyncConnectionPool

DSN_ENV = "SEVENP_BENCH_DSN"
SCHEMA_ENV = "SEVENP_BENCH_SCHEMA"
POOL_ENV = "SEVENP_BENCH_POOL_SIZE"
ROWS_ENV = "SEVENP_BENCH_ROWS"
DEFAULT_SCHEMA = "sevenp_bench"
DEFAULT_ROWS = 10_000
TABLE = "bench_ceiling"

ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


class Greeting(msgspec.Struct):
    """Small JSON body of the bare JSON ceiling."""

    message: str
    id: int
    ok: bool


class Row(msgspec.Struct):
    """One row of the ceiling table."""

    id: int
    payload: str


class _Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    pass


class Notifications(_Base):
    """Notification switches of the preferences body."""

    email: bool
    push: bool
    sms: bool


class Privacy(_Base):
    """Privacy switches of the preferences body."""

    profile_visible: bool
    show_progress: bool
    allow_messages: bool


class Preferences(_Base):
    """Same shape as ``PUT /api/users/preferences``, so decoding cost matches the real route."""

    language: str
    timezone: str
    notifications: Notifications
    privacy: Privacy


_GREETING = Greeting(message="hello", id=7, ok=True)


@get("/json", sync_to_thread=False)
def _json() -> Greeting:
    return _GREETING


@get("/ready", sync_to_thread=False)
def _ready() -> str:
    """Readiness URL of every ceiling app (the update ceiling has no GET route of its own)."""
    return "ok"


def json_app() -> Litestar:
    """Bare Litestar + msgspec JSON route: ``GET /json``."""
    return Litestar(route_handlers=[_json, _ready], openapi_config=None, logging_config=None)


def _pool_from_env() -> tuple[AsyncConnectionPool, int]:
    dsn = os.environ.get(DSN_ENV)
    if not dsn:
        raise RuntimeError(f"{DSN_ENV} is not set")
    schema = os.environ.get(SCHEMA_ENV, DEFAULT_SCHEMA)
    size = int(os.environ.get(POOL_ENV, "10"))
    rows = int(os.environ.get(ROWS_ENV, str(DEFAULT_ROWS)))
    pool = AsyncConnectionPool(
        dsn,
        min_size=size,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
    )
    return pool, rows


HandlerFactory = Callable[[AsyncConnectionPool, int], HTTPRouteHandler]


def _db_app(handler_factory: HandlerFactory) -> Litestar:
    pool, rows = _pool_from_env()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    handler = handler_factory(pool, rows)
    return Litestar(
        route_handlers=[handler, _ready],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
    )


def _select_handler(pool: AsyncConnectionPool, rows: int) -> HTTPRouteHandler:
    @get("/select")
    async def select() -> Row:
        key = random.randint(1, rows)
        async with pool.connection() as conn:
            cur = await conn.execute(f"SELECT id, payload FROM {TABLE} WHERE id = %s", (key,))
            found = await cur.fetchone()
        assert found is not None
        return Row(id=found[0], payload=found[1])

    return select


def _update_handler(pool: AsyncConnectionPool, rows: int) -> HTTPRouteHandler:
    @put("/update")
    async def update(data: Preferences) -> Preferences:
        key = random.randint(1, rows)
        payload = msgspec.json.encode(data).decode()
        async with pool.connection() as conn:
            await conn.execute(f"UPDATE {TABLE} SET payload = %s WHERE id = %s", (payload, key))
        return data

    return update


class Updated(msgspec.Struct):
    """Answer of the single-UPDATE ceiling: the row it changed."""

    id: int
    updated: bool


def _row_update_handler(pool: AsyncConnectionPool, rows: int) -> HTTPRouteHandler:
    @post("/row-update", status_code=200)
    async def row_update() -> Updated:
        key = random.randint(1, rows)
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"UPDATE {TABLE} SET payload = md5(payload) WHERE id = %s", (key,)
            )
        return Updated(id=key, updated=cur.rowcount == 1)

    return row_update


def select_app() -> Litestar:
    """``GET /select``: one primary-key SELECT through a psycopg AsyncConnectionPool."""
    return _db_app(_select_handler)


def update_app() -> Litestar:
    """``PUT /update``: decode a preferences body, then one primary-key UPDATE."""
    return _db_app(_update_handler)


def row_update_app() -> Litestar:
    """``POST /row-update``: no body, one primary-key UPDATE (the bare cost of a write route)."""
    return _db_app(_row_update_handler)


@dataclass(frozen=True)
class Argon2Ceiling:
    """Measured argon2id verify cost and the login rate it allows on this machine."""

    verify_ms_median: float
    verify_ms_min: float
    samples: int
    cores: int

    @property
    def logins_per_s(self) -> float:
        """Upper bound of logins/s: every core verifying passwords back to back."""
        return self.cores / (self.verify_ms_median / 1000.0)


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def measure_argon2(samples: int = 20, min_seconds: float = 0.0) -> Argon2Ceiling:
    """Time at least ``samples`` argon2id verifies (and for at least ``min_seconds``) at
    m=19456 KiB, t=2, p=1, on one thread."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
    )
    encoded = hasher.hash("correct horse battery staple")
    hasher.verify(encoded, "correct horse battery staple")  # warm-up
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < samples or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        hasher.verify(encoded, "correct horse battery staple")
        times.append((time.perf_counter() - t0) * 1000.0)
    return Argon2Ceiling(
        verify_ms_median=statistics.median(times),
        verify_ms_min=min(times),
        samples=len(times),
        cores=usable_cores(),
    )
