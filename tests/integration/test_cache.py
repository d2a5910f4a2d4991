"""CacheActor on real Redis: hits, single flight, invalidation across instances, lost events,
Redis going away, and the single-instance mode without Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import pytest
import redis.asyncio as aioredis

from actors.bus import SyncBus
from actors.cache import CacheActor
from schemas.events import CacheTagsInvalidated, event_decoder, event_encoder
from tests.support.services import free_port, redis_server_process


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> str:
    return f"test:cache:{uuid.uuid4().hex[:12]}:"


@dataclass
class Source:
    """The database stand-in: a value per key that writes change, and a count of loads."""

    values: dict[str, bytes] = field(default_factory=dict)
    loads: int = 0

    def loader(self, key: str) -> Callable[[], Awaitable[bytes]]:
        async def load() -> bytes:
            self.loads += 1
            return self.values[key]

        return load


@dataclass
class Instance:
    cache: CacheActor
    bus: SyncBus


async def eventually(predicate: Callable[[], bool], *, within: float) -> float:
    """Seconds until predicate() held; fails the test after `within`."""
    started = anyio.current_time()
    with anyio.fail_after(within):
        while not predicate():
            await anyio.sleep(0.005)
    return anyio.current_time() - started


async def eventually_reads(
    instance: Instance, key: str, tags: list[str], source: Source, want: bytes, *, within: float
) -> float:
    """Seconds until `instance` answers `want` for `key`; fails the test after `within`."""
    started = anyio.current_time()
    with anyio.fail_after(within):
        while await instance.cache.get_or_load(key, tags, source.loader(key)) != want:
            await anyio.sleep(0.005)
    return anyio.current_time() - started


@contextlib.asynccontextmanager
async def instances(
    redis_url: str | None,
    prefix: str,
    count: int = 2,
    *,
    local_ttl: float = 30.0,
    publish: bool = True,
) -> AsyncIterator[list[Instance]]:
    """`count` instances (each its own Redis client, bus and cache actor), all running."""
    async with contextlib.AsyncExitStack() as stack:
        made: list[Instance] = []
        for number in range(count):
            client = None
            if redis_url is not None:
                client = aioredis.Redis.from_url(
                    redis_url, socket_timeout=1, socket_connect_timeout=1
                )
                stack.push_async_callback(client.aclose)
            name = f"i{number}"
            # Without `publish`, instance 0 announces on a channel no other instance hears.
            bus = SyncBus(
                client,
                channel=f"{prefix}events" if publish or number else f"{prefix}nowhere",
                instance_id=name,
                io_timeout=1,
            )
            stack.callback(bus.close)
            cache = CacheActor(
                redis=client,
                bus=bus,
                instance_id=name,
                prefix=prefix,
                local_ttl=local_ttl,
                local_max_entries=100,
                default_ttl=60,
                io_timeout=0.5,
            )
            made.append(Instance(cache, bus))
        async with anyio.create_task_group() as tg:
            for instance in made:
                await tg.start(instance.bus.run)
                await tg.start(instance.cache.run)
            if redis_url is not None:
                await eventually(
                    lambda: all(i.bus.connected or not i.bus.redis_configured for i in made),
                    within=5,
                )
            yield made
            tg.cancel_scope.cancel()


def test_the_invalidation_event_round_trips() -> None:
    event = CacheTagsInvalidated(tags=["course:1", "courses:list"], versions=[7, 9], origin="a")
    encoded = event_encoder.encode(event)
    assert b'"type":"cache.tags_invalidated"' in encoded
    assert event_decoder.decode(encoded) == event


async def test_a_miss_loads_then_both_tiers_hit(redis_url: str, prefix: str) -> None:
    source = Source({"course:1": b'{"v":1}'})
    tags = ["course:1", "courses:list"]
    async with instances(redis_url, prefix, local_ttl=0.2) as (a, b):
        load = source.loader("course:1")
        assert await a.cache.get_or_load("course:1", tags, load) == b'{"v":1}'
        assert (source.loads, a.cache.misses) == (1, 1)
        assert await a.cache.get_or_load("course:1", tags, load) == b'{"v":1}'
        assert a.cache.local_hits == 1

        assert await b.cache.get_or_load("course:1", tags, load) == b'{"v":1}'
        assert (source.loads, b.cache.redis_hits) == (1, 1)

        # Past local_ttl the copy held here is confirmed against Redis, not fetched again.
        hits = a.cache.local_hits
        started = anyio.current_time()
        while anyio.current_time() - started < 0.5:
            assert await a.cache.get_or_load("course:1", tags, load) == b'{"v":1}'
            await anyio.sleep(0.01)
        assert source.loads == 1
        assert a.cache.local_hits > hits
        assert a.cache.redis_hits == 0


async def test_concurrent_misses_of_one_key_load_once(redis_url: str, prefix: str) -> None:
    release = anyio.Event()
    loads = 0

    async def slow_load() -> bytes:
        nonlocal loads
        loads += 1
        await release.wait()
        return b"body"

    results: list[bytes] = []
    async with instances(redis_url, prefix, count=1) as (a,):

        async def read() -> None:
            results.append(await a.cache.get_or_load("k", ["t"], slow_load))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(read)
            await eventually(lambda: loads == 1, within=2)
            await anyio.sleep(0.05)
            release.set()
        assert loads == 1
        assert results == [b"body"] * 20
        assert a.cache.shared_loads == 19


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(
    redis_url: str, prefix: str
) -> None:
    release = anyio.Event()
    calls = 0

    async def failing() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        raise LookupError("gone")

    errors: list[BaseException] = []
    async with instances(redis_url, prefix, count=1) as (a,):

        async def read() -> None:
            try:
                await a.cache.get_or_load("k", ["t"], failing)
            except LookupError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(read)
            await eventually(lambda: calls == 1, within=2)
            release.set()
        assert len(errors) == 5
        source = Source({"k": b"fine"})
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"fine"


async def test_an_invalidation_on_one_instance_is_seen_on_the_other_at_once(
    redis_url: str, prefix: str
) -> None:
    source = Source({"course:7": b"old"})
    tags = ["course:7"]
    async with instances(redis_url, prefix, local_ttl=30.0) as (a, b):
        for instance in (a, b):
            assert await instance.cache.get_or_load("course:7", tags, source.loader("course:7"))
        assert await b.cache.get_or_load("course:7", tags, source.loader("course:7")) == b"old"
        assert b.cache.local_hits >= 1

        source.values["course:7"] = b"new"
        await a.cache.invalidate(["course:7", "courses:list"])
        assert await a.cache.get_or_load("course:7", tags, source.loader("course:7")) == b"new"
        took = await eventually_reads(b, "course:7", tags, source, b"new", within=1.0)
        assert took < 1.0, "the bus event, not the 30 s local trust, made B reload"
        assert b.cache.invalidations_received == 2
        assert a.cache.invalidations_sent == 2


async def test_a_lost_event_costs_at_most_the_local_ttl(redis_url: str, prefix: str) -> None:
    local_ttl = 0.5
    source = Source({"course:9": b"old"})
    tags = ["course:9"]
    # Instance 0's invalidations reach Redis, but its events reach no other instance.
    async with instances(redis_url, prefix, local_ttl=local_ttl, publish=False) as (a, b):
        for instance in (a, b):
            await instance.cache.get_or_load("course:9", tags, source.loader("course:9"))
        assert await b.cache.get_or_load("course:9", tags, source.loader("course:9")) == b"old"

        source.values["course:9"] = b"new"
        await a.cache.invalidate(["course:9"])
        assert await b.cache.get_or_load("course:9", tags, source.loader("course:9")) == b"old"
        took = await eventually_reads(b, "course:9", tags, source, b"new", within=local_ttl + 1)
        assert took <= local_ttl + 0.25
        assert b.cache.invalidations_received == 0


async def test_a_load_racing_a_write_leaves_no_stale_body(redis_url: str, prefix: str) -> None:
    source = Source({"course:3": b"old"})
    tags = ["course:3"]
    loading = anyio.Event()
    release = anyio.Event()

    async def slow_old_read() -> bytes:
        loading.set()
        await release.wait()
        return b"old"

    async with instances(redis_url, prefix, local_ttl=30.0) as (a, b):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.cache.get_or_load, "course:3", tags, slow_old_read)
            await loading.wait()
            source.values["course:3"] = b"new"
            await b.cache.invalidate(["course:3"])
            await eventually(lambda: a.cache.invalidations_received == 1, within=1)
            fresh = await a.cache.get_or_load("course:3", tags, source.loader("course:3"))
            assert fresh == b"new", "a caller after the invalidation does not join the old load"
            release.set()
        for instance in (a, b):
            got = await instance.cache.get_or_load("course:3", tags, source.loader("course:3"))
            assert got == b"new"


async def test_without_redis_the_local_tier_serves_and_invalidates(prefix: str) -> None:
    source = Source({"k": b"one"})
    async with instances(None, prefix, count=1) as (a,):
        assert a.cache.details()["mode"] == "local"
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"one"
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"one"
        assert (source.loads, a.cache.local_hits) == (1, 1)
        source.values["k"] = b"two"
        await a.cache.invalidate(["other"])
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"one"
        await a.cache.invalidate(["t"])
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"two"
        assert source.loads == 2
        await a.cache.invalidate(["*"])
        assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"two"
        assert source.loads == 3
        assert not a.cache.degraded


async def test_with_redis_stopped_loads_are_served_and_the_actor_is_degraded(
    prefix: str,
) -> None:
    port = free_port()
    source = Source({"k": b"one", "other": b"x"})
    with contextlib.ExitStack() as redis_process:
        url = redis_process.enter_context(redis_server_process(port))
        async with instances(url, prefix, count=1, local_ttl=0.2) as (a,):
            assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"one"
            redis_process.close()

            source.values["k"] = b"two"
            await eventually_reads(a, "k", ["t"], source, b"two", within=2)
            assert a.cache.degraded
            assert a.cache.details()["mode"] == "degraded"
            assert await a.cache.get_or_load("other", ["u"], source.loader("other")) == b"x"
            await a.cache.invalidate(["t"])
            loads = source.loads
            assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"two"
            assert source.loads == loads + 1, "nothing is cached while Redis is away"

            with redis_server_process(port):
                await eventually(lambda: not a.cache.degraded, within=5)
                await a.cache.get_or_load("k", ["t"], source.loader("k"))
                loads = source.loads
                assert await a.cache.get_or_load("k", ["t"], source.loader("k")) == b"two"
                assert source.loads == loads
            assert a.cache.redis_errors >= 1


async def test_disabled_the_cache_always_loads(prefix: str) -> None:
    source = Source({"k": b"one"})
    bus = SyncBus(None, instance_id="a")
    cache = CacheActor(redis=None, bus=bus, instance_id="a", prefix=prefix, enabled=False)
    for _ in range(3):
        assert await cache.get_or_load("k", ["t"], source.loader("k")) == b"one"
    await cache.invalidate(["t"])
    assert source.loads == 3
    assert cache.details()["mode"] == "off"
    bus.close()


async def test_a_single_string_is_refused_as_tags(prefix: str) -> None:
    source = Source({"k": b"one"})
    async with instances(None, prefix, count=1) as (a,):
        with pytest.raises(TypeError, match="sequence of tags"):
            await a.cache.get_or_load("k", "course:1", source.loader("k"))
        with pytest.raises(TypeError, match="sequence of tags"):
            await a.cache.invalidate("course:1")
