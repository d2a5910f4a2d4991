"""Rate limiting against real Redis: the strict atomic limiter and the batched cluster budget."""

from __future__ import annotations

import itertools
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import GcraStore
from actors.ratelimit.policy import API, AUTH, RatePolicy
from actors.ratelimit.redis_sync import (
    MAX_BATCH_SIZE,
    GlobalBudgetSync,
    StrictLimiter,
    budget_key,
    redis_key,
)
from tests.support.services import free_port, redis_server_process

IP = "203.0.113.7"
UNUSED_PORT_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def ratelimit_redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def delete_prefixed(url: str, prefix: str) -> None:
    async with Redis.from_url(url) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)


@pytest.fixture
async def prefix(ratelimit_redis_url: str) -> AsyncIterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    await delete_prefixed(ratelimit_redis_url, prefix)


@pytest.fixture
async def client(ratelimit_redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(ratelimit_redis_url) as client:
        yield client


class Clock:
    """A clock we move by hand, shared by every simulated instance."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worst_excess(times: list[float], limit: int, interval: float) -> float:
    """max over i <= j of admissions in [t_i, t_j] minus what one exact GCRA allows there."""
    worst, lowest = -math.inf, math.inf
    for j, t in enumerate(sorted(times)):
        lowest = min(lowest, j - t / interval)
        worst = max(worst, j + 1 - t / interval - lowest - limit)
    return worst


def over_admission_bound(instances: int, policy: RatePolicy, lag: float) -> float:
    """E = (N - 1) * (limit + lag / interval), lag = 2 * (the longest a unit waits to be sent
    (the flush gap) + flush round trip)."""
    return (instances - 1) * (policy.limit + lag / policy.emission_interval)


async def test_strict_limiter_is_exact(client: Redis, prefix: str) -> None:
    strict = StrictLimiter(prefix=prefix)
    decisions = [await strict.check(client, AUTH, IP) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 179 < decisions[5].retry_after <= 180
    assert 899 < decisions[4].reset_after <= 900
    await strict.refund(client, AUTH, IP)
    assert (await strict.check(client, AUTH, IP)).allowed
    assert not (await strict.check(client, AUTH, IP)).allowed


async def test_strict_limiter_cost_and_refund_bounds(client: Redis, prefix: str) -> None:
    strict = StrictLimiter(prefix=prefix)
    assert (await strict.check(client, AUTH, IP, cost=3)).remaining == 2
    denied = await strict.check(client, AUTH, IP, cost=3)
    assert not denied.allowed
    assert denied.remaining == 2
    assert 179 < denied.retry_after <= 180
    for _ in range(5):
        await strict.refund(client, AUTH, IP)
    assert await client.exists(redis_key(prefix, AUTH, IP)) == 0
    await strict.refund(client, AUTH, "never-seen")
    assert (await strict.check(client, AUTH, IP)).remaining == 4


async def test_strict_key_lives_as_long_as_its_backlog(client: Redis, prefix: str) -> None:
    await StrictLimiter(prefix=prefix).check(client, AUTH, IP)
    assert 179_000 < await client.pttl(redis_key(prefix, AUTH, IP)) <= 180_000


async def test_strict_limiter_is_atomic_under_concurrency(client: Redis, prefix: str) -> None:
    strict = StrictLimiter(prefix=prefix)
    allowed: list[bool] = []

    async def attempt() -> None:
        allowed.append((await strict.check(client, AUTH, IP)).allowed)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(attempt)
    assert len(allowed) == 50
    assert sum(allowed) == 5


async def test_flush_returns_the_cluster_backlog(client: Redis, prefix: str) -> None:
    clock = Clock()
    first = GlobalBudgetSync(prefix=prefix, clock=clock)
    second = GlobalBudgetSync(prefix=prefix, clock=clock)
    first.record(API, IP, 3)
    # The key was idle: its backlog is first's own 3 units, nothing to merge.
    assert await first.flush(client) == {}
    second.record(API, IP, 2)
    assert await second.flush(client) == {"api": {IP: 5.0}}
    clock.now += 1.2
    first.record(API, IP, 1)
    assert await first.flush(client) == {"api": {IP: 4.0}}
    # The busy key's TAT, and the set lives as long as its last TAT.
    assert await client.zscore(budget_key(prefix, API), IP) is not None
    assert 0 < await client.pttl(budget_key(prefix, API)) <= 2_400
    assert await first.flush(client) is None  # nothing to send


async def test_a_flush_split_over_several_scripts_answers_every_key(
    client: Redis, prefix: str
) -> None:
    sync = GlobalBudgetSync(prefix=prefix, batch_size=3, clock=Clock())
    other = RatePolicy("other", 10, 10)
    keys = [f"198.51.100.{i}" for i in range(5)] + ["[2001:db8::1]", "user with spaces"]
    for key in keys:
        sync.record(API, key)
        sync.record(other, key)
    assert await sync.flush(client) == {}  # every key was idle
    for units, key in enumerate(keys, start=1):
        sync.record(API, key, units)
        sync.record(other, key)
    assert await sync.flush(client) == {
        "api": {key: float(units + 1) for units, key in enumerate(keys, start=1)},
        "other": dict.fromkeys(keys, 2.0),
    }
    assert await client.zcard(budget_key(prefix, API)) == len(keys)


async def test_drained_keys_leave_the_budget_set(client: Redis, prefix: str) -> None:
    clock = Clock()
    sync = GlobalBudgetSync(prefix=prefix, clock=clock)
    sync.record(API, "drains", 2)  # 1.2 s of backlog at 0.6 s per unit
    sync.record(API, "stays", 10)  # 6 s
    await sync.flush(client)
    clock.now += 3
    sync.record(API, "new")
    await sync.flush(client)
    assert sorted(await client.zrange(budget_key(prefix, API), 0, -1)) == [b"new", b"stays"]


def test_a_flush_script_holds_at_most_what_lua_can_unpack() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        GlobalBudgetSync(batch_size=MAX_BATCH_SIZE + 1)


async def test_a_flush_of_the_largest_batch_runs(client: Redis, prefix: str) -> None:
    sync = GlobalBudgetSync(prefix=prefix, batch_size=MAX_BATCH_SIZE, clock=Clock())
    keys = [f"user-{i}" for i in range(MAX_BATCH_SIZE)]
    for key in keys:
        sync.record(API, key)
    assert await sync.flush(client) == {}
    for key in keys:
        sync.record(API, key)
    backlogs = await sync.flush(client)
    assert backlogs == {"api": dict.fromkeys(keys, 2.0)}


async def test_other_instances_units_reach_the_local_store(client: Redis, prefix: str) -> None:
    clock = Clock()
    stores = [GcraStore(clock=clock) for _ in range(2)]
    syncs = [GlobalBudgetSync(prefix=prefix, clock=clock) for _ in range(2)]
    for store, sync, units in zip(stores, syncs, (60, 1), strict=True):
        for _ in range(units):
            assert store.check(API, IP).allowed
            sync.record(API, IP)
        for backlogs in (await sync.flush(client) or {}).values():
            store.merge_remote(API, backlogs)
    assert [store.peek(API, IP).remaining for store in stores] == [40, 39]


async def test_flush_without_net_units_does_no_io() -> None:
    sync = GlobalBudgetSync()
    sync.record(API, IP, 1)
    sync.record(API, IP, -1)
    async with Redis.from_url(UNUSED_PORT_URL) as unreachable:
        assert await sync.flush(unreachable) is None


async def test_failed_flush_raises_and_drops_its_batch() -> None:
    sync = GlobalBudgetSync()
    sync.record(API, IP, 1)
    async with Redis.from_url(UNUSED_PORT_URL) as unreachable:
        with pytest.raises(RedisConnectionError):
            await sync.flush(unreachable)
    assert len(sync) == 0


async def test_flush_recovers_from_a_flushed_script_cache(client: Redis, prefix: str) -> None:
    sync = GlobalBudgetSync(prefix=prefix, clock=Clock())
    sync.record(API, IP, 1)
    await sync.flush(client)
    await client.script_flush()
    sync.record(API, IP, 1)
    assert await sync.flush(client) == {"api": {IP: 2.0}}


BURSTY = RatePolicy("bursty", 100, 2)


async def test_three_instances_in_real_time_stay_within_the_bound(
    ratelimit_redis_url: str, prefix: str
) -> None:
    """Instances join at 0, 0.5 and 1 s, hammering one key, first flushing 100 ms after joining."""
    period = 0.1
    admitted: list[float] = []
    flush_starts: list[list[float]] = [[], [], []]
    round_trips: list[float] = []
    stop_at = time.monotonic() + 2.5

    async def instance(index: int) -> None:
        await anyio.sleep(0.5 * index)
        store = GcraStore(clock=time.monotonic)
        sync = GlobalBudgetSync(prefix=prefix)
        async with Redis.from_url(ratelimit_redis_url) as client:
            await client.ping()

            async def flush_loop() -> None:
                await anyio.sleep(period)
                while True:
                    started = time.monotonic()
                    flush_starts[index].append(started)
                    for backlogs in (await sync.flush(client) or {}).values():
                        store.merge_remote(BURSTY, backlogs)
                    round_trips.append(time.monotonic() - started)
                    await anyio.sleep(max(0.0, period - (time.monotonic() - started)))

            async with anyio.create_task_group() as tg:
                tg.start_soon(flush_loop)
                while time.monotonic() < stop_at:
                    for _ in range(5):
                        if store.check(BURSTY, "victim").allowed:
                            sync.record(BURSTY, "victim")
                            admitted.append(time.monotonic())
                    await anyio.sleep(0.001)
                tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for index in range(3):
            tg.start_soon(instance, index)

    gap = max(b - a for starts in flush_starts for a, b in itertools.pairwise(starts))
    bound = over_admission_bound(3, BURSTY, 2 * (gap + max(round_trips)))
    excess = worst_excess(admitted, BURSTY.limit, BURSTY.emission_interval)
    print(f"admitted {len(admitted)}, worst excess {excess:.1f}, bound {bound:.1f}")
    assert len(admitted) >= BURSTY.limit
    assert excess <= bound


SIM = RatePolicy("sim", 20, 2)
STEP = 0.01
FLUSH_EVERY = 10
STEPS = 600
segments = st.lists(
    st.tuples(st.sampled_from([0, 1, 3, 100]), st.integers(min_value=1, max_value=200)),
    min_size=1,
    max_size=8,
)


async def simulate(
    url: str,
    prefix: str,
    clock: Clock,
    policy: RatePolicy,
    syncs: list[GlobalBudgetSync],
    attempts: list[Callable[[int], int]],
    phases: list[int],
    steps: int,
) -> list[float]:
    """Instances (a store recording its admissions into each sync) on one simulated clock, one
    key, real Redis: per step of STEP seconds each makes its attempts until refused, and flushes
    every FLUSH_EVERY steps at its phase (taking no simulated time). The times of every
    admission."""
    stores = [GcraStore(clock=clock) for _ in syncs]
    admitted: list[float] = []
    try:
        async with Redis.from_url(url) as client:
            for step in range(steps):
                clock.now = 1_000.0 + step * STEP
                for store, sync, attempts_at in zip(stores, syncs, attempts, strict=True):
                    for _ in range(attempts_at(step)):
                        if not store.check(policy, "victim").allowed:
                            break
                        sync.record(policy, "victim")
                        admitted.append(clock.now)
                for store, sync, phase in zip(stores, syncs, phases, strict=True):
                    if step % FLUSH_EVERY == phase:
                        for backlogs in (await sync.flush(client) or {}).values():
                            store.merge_remote(policy, backlogs)
    finally:
        await delete_prefixed(url, prefix)
    return admitted


def schedule(plan: list[tuple[int, int]]) -> Callable[[int], int]:
    """Attempts per step: each segment is (attempts per step, steps)."""
    steps = [attempts for attempts, length in plan for _ in range(length)]
    return lambda step: steps[step] if step < len(steps) else 0


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(segments, min_size=3, max_size=3), phases=st.permutations([0, 3, 7]))
@example(plans=[[(100, 600)]] * 3, phases=[0, 3, 7])
@example(plans=[[(100, 600)], [(0, 150), (100, 450)], [(0, 300), (100, 300)]], phases=[0, 3, 7])
@example(plans=[[(1, 600)], [(0, 210), (100, 5), (0, 200), (100, 5)], [(3, 600)]], phases=[7, 0, 3])
async def test_adversarial_schedules_stay_within_the_bound(
    ratelimit_redis_url: str, plans: list[list[tuple[int, int]]], phases: list[int]
) -> None:
    """Three instances on one simulated clock (flush takes no simulated time), real Redis."""
    prefix = f"test:{uuid.uuid4().hex}:"
    clock = Clock()
    syncs = [GlobalBudgetSync(prefix=prefix, clock=clock) for _ in plans]
    attempts = [schedule(plan) for plan in plans]
    admitted = await simulate(
        ratelimit_redis_url, prefix, clock, SIM, syncs, attempts, phases, STEPS
    )
    bound = over_admission_bound(3, SIM, 2 * FLUSH_EVERY * STEP)
    assert worst_excess(admitted, SIM.limit, SIM.emission_interval) <= bound + 1e-9


async def test_only_a_round_trip_brings_the_link_back() -> None:
    """Flushes with nothing to send (here a unit and its refund) never mark Redis reachable:
    the actor stays degraded while Redis is down, and is synced again once a heartbeat gets
    through."""
    port = free_port()
    login = RatePolicy("login", 3, 900, strict=True)
    with redis_server_process(port) as url:
        client = Redis.from_url(url, socket_connect_timeout=0.2)
        actor = RateLimitActor(
            redis=client, instance_id="test", flush_seconds=0.01, redis_timeout=0.5
        )
        modes: list[bool] = []
        actor.on_change = lambda: modes.append(actor.degraded)
        assert (await actor.check(login, IP)).allowed  # a round trip: the link is up
        assert actor.check_local(API, IP).allowed
        await actor.refund(API, IP)
    try:
        assert (await actor.check(login, IP)).allowed  # decided locally: Redis is gone
        assert modes == [True]
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)
            await anyio.sleep(0.3)  # thirty flushes
            assert modes == [True]
            with redis_server_process(port):
                with anyio.fail_after(10):
                    while actor.degraded:
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        assert modes == [True, False]
    finally:
        await client.aclose()
