"""CacheActor: response bodies cached in Redis with tags, and in process in front of Redis.

    body = await cache.get_or_load("course:123", ["course:123"], load, ttl=300)
    uow.after_commit(lambda: cache.invalidate(["course:123", "courses:list"]))

Versioned tags. Every tag has a version in Redis (`actors/cache_redis.py`); every entry
keeps the versions its tags had when its body was loaded, and is a hit only while they are
still current. `invalidate` raises the versions (one script), so every entry under those
tags, in Redis and in every process, stops matching at once without being looked up.
Every entry also carries the tag `*` (`EVERY_ENTRY`): raising it empties the whole cache.

Reads. An in-process hit (`actors/cache_local.py`) is a dict lookup with no await: it needs
the entry's tag versions to be the ones this process holds AND each of them to have been
confirmed by Redis less than `local_ttl` seconds ago. Otherwise one script reads the tags'
versions (confirming them for every entry that shares them) and the entry, unless the body
this process holds is still current. A miss loads (`load()`, the database) and stores the
body only if its tags did not move while it loaded, so a write committed during a load
never leaves its stale body behind. Concurrent misses of one key in a process load once;
an invalidation of its tags detaches a load in flight, so later callers start a fresh one.

Coherence and the staleness bound. After `invalidate(tags)` returns on instance A:
- A never serves the old bodies (it raised its own versions before returning);
- a Redis read, on any instance, never does (versions are compared in the same script);
- instance B stops serving its in-process copies when the `CacheTagsInvalidated` event
  arrives on the bus, normally within milliseconds. If the event is lost, B's versions of
  those tags were confirmed before the raise and are trusted for `local_ttl` seconds only,
  so B may serve the old body for at most `local_ttl` (CACHE_LOCAL_TTL_SECONDS, 1 s by
  default) after the raise, never longer. After every bus reconnection (and restart) all
  versions held in process must be confirmed again before use.
- If A cannot reach Redis, the raise did not happen: A drops those tags in process and, as
  soon as Redis answers again, raises `*` before it trusts Redis, emptying every tier of
  every instance. Until then other instances may serve entries the write made stale; only
  an instance that dies while cut off from Redis leaves them to their TTL.

Redis down: reads fall through to `load()` without errors (in-process entries confirmed
within `local_ttl` still serve), nothing is stored, the actor reports itself degraded, and
its loop probes Redis every `_PROBE_SECONDS`. Without Redis (single-instance mode) the
in-process tier alone serves, its versions being the truth. Disabled: `get_or_load` is
`load()` and `invalidate` does nothing.

Why not a library. cashews (the best kept asyncio cache) keeps tags as Redis sets of keys
and deletes the keys: a load racing a write re-stores the stale body after the delete,
for its whole TTL; its in-process tier ("client side") has no TTL and relies on Redis
invalidation messages, which are at-most-once, and ignores them for keys it wrote within
5 s, so a lost or ignored message leaves a stale copy until LRU eviction. Litestar's
`RedisStore`/`MemoryStore` have no tags, no coherence between instances, and the memory
store no bound on entries. Both break the lost-event bound, so the two tiers are here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
import redis.asyncio as aioredis

from actors.base import Actor
from actors.bus import SyncBus
from actors.cache_local import LocalTier
from actors.cache_redis import TAG_MARGIN_SECONDS, RedisTier
from schemas.events import CacheTagsInvalidated, event_encoder

logger = logging.getLogger("sevenp.cache")

EVERY_ENTRY = "*"
_PROBE_SECONDS = 0.5

Loader = Callable[[], Awaitable[bytes]]


@dataclass(eq=False, slots=True)
class _Flight:
    """One load in progress for a key; the callers that arrive meanwhile wait for it."""

    tags: frozenset[str]
    done: anyio.Event = field(default_factory=anyio.Event)
    body: bytes | None = None
    error: Exception | None = None


class CacheActor(Actor):
    def __init__(
        self,
        *,
        redis: aioredis.Redis | None,
        bus: SyncBus,
        instance_id: str,
        prefix: str = "sevenp:",
        enabled: bool = True,
        local_max_entries: int = 2000,
        local_ttl: float = 1.0,
        default_ttl: float = 300.0,
        io_timeout: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "cache"
        self._redis = redis
        self._bus = bus
        self._instance_id = instance_id
        self._enabled = enabled
        self._default_ttl = default_ttl
        self._io_timeout = io_timeout
        self._clock = clock
        self._local = LocalTier(
            max_entries=local_max_entries,
            trust_seconds=local_ttl,
            authoritative=redis is None,
            clock=clock,
        )
        self._tier = (
            None
            if redis is None
            else RedisTier(redis, prefix=prefix, tag_ttl_seconds=default_ttl + TAG_MARGIN_SECONDS)
        )
        self._redis_up = redis is not None
        self._raise_all_pending = False
        self._flights: dict[str, _Flight] = {}
        self.local_hits = 0
        self.redis_hits = 0
        self.misses = 0
        self.shared_loads = 0
        """Callers served by another caller's load of the same key."""
        self.store_conflicts = 0
        """Loaded bodies not kept because a tag moved on while they loaded."""
        self.invalidations_sent = 0
        self.invalidations_received = 0
        self.redis_errors = 0
        bus.subscribe(CacheTagsInvalidated, self._on_tags_invalidated)
        bus.on_connected(self._on_bus_connected)

    # -- hot path -----------------------------------------------------------------------------

    async def get_or_load(
        self, key: str, tags: Sequence[str], load: Loader, ttl: float | None = None
    ) -> bytes:
        """The cached body for `key`, or `load()`'s, kept under `tags` for `ttl` seconds."""
        if not self._enabled:
            return await load()
        names = (EVERY_ENTRY, *sorted(set(_tag_list(tags)) - {EVERY_ENTRY}))
        body = self._local.lookup(key, names)
        if body is not None:
            self.local_hits += 1
            return body
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.body is not None:
                self.shared_loads += 1
                return flight.body
            if flight.error is not None:
                raise flight.error
        flight = self._flights[key] = _Flight(frozenset(names))
        try:
            flight.body = await self._fill(
                key, names, load, self._default_ttl if ttl is None else ttl
            )
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()
        return flight.body

    async def invalidate(self, tags: Iterable[str]) -> None:
        """Make every entry under any of `tags` a miss, here and on every instance."""
        if not self._enabled:
            return
        names = sorted(set(_tag_list(tags)))
        if not names:
            return
        self.invalidations_sent += len(names)
        self._detach_flights(names)
        if self._tier is None:
            self._local.bump(names)
            return
        if self._redis_up:
            asked_at = self._clock()
            try:
                with anyio.fail_after(self._io_timeout):
                    versions = await self._tier.bump(names)
            except Exception as exc:
                self._link_lost(exc)
            else:
                self._local.raise_versions(names, versions, checked_at=asked_at)
                await self._announce(
                    CacheTagsInvalidated(
                        tags=names, versions=list(versions), origin=self._instance_id
                    )
                )
                return
        self._local.forget(names)
        self._raise_all_pending = True

    async def _announce(self, event: CacheTagsInvalidated) -> None:
        """Publish before returning, so the write that invalidated is acknowledged only once
        every subscribed instance has the event in its socket; queued on the bus otherwise."""
        assert self._redis is not None
        try:
            with anyio.fail_after(self._io_timeout):
                await self._redis.publish(self._bus.channel, event_encoder.encode(event))
        except Exception as exc:
            logger.warning("cache invalidation queued on the bus: %s", exc)
            await self._bus.publish(event)

    @property
    def degraded(self) -> bool:
        """Redis is configured but not answering: reads go to the loader."""
        return self._tier is not None and not self._redis_up

    def details(self) -> Mapping[str, object]:
        return {
            "mode": self._mode(),
            "entries": len(self._local),
            "tags": self._local.tag_count,
            "local_hits": self.local_hits,
            "redis_hits": self.redis_hits,
            "misses": self.misses,
            "shared_loads": self.shared_loads,
            "store_conflicts": self.store_conflicts,
            "evictions": self._local.evictions,
            "invalidations_sent": self.invalidations_sent,
            "invalidations_received": self.invalidations_received,
            "redis_errors": self.redis_errors,
        }

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._local.distrust()
        task_status.started()
        while True:
            await anyio.sleep(_PROBE_SECONDS)
            self._local.prune()
            if self._tier is not None and (not self._redis_up or self._raise_all_pending):
                await self._recover(self._tier)

    # -- internals ----------------------------------------------------------------------------

    async def _fill(self, key: str, names: tuple[str, ...], load: Loader, ttl: float) -> bytes:
        if self._tier is None:
            versions = self._local.current_versions(names)
            self.misses += 1
            body = await load()
            self._local.put(key, names, versions, body, ttl)
            return body
        if not self._redis_up:
            self.misses += 1
            return await load()
        known = self._local.entry_versions(key, names)
        asked_at = self._clock()
        try:
            with anyio.fail_after(self._io_timeout):
                versions, stored = await self._tier.read(key, names, known)
        except Exception as exc:
            self._link_lost(exc)
            self.misses += 1
            return await load()
        self._local.confirm(names, versions, asked_at)
        if versions == known:
            held = self._local.lookup(key, names)
            if held is not None:
                self.local_hits += 1
                return held
        elif stored is not None and stored.tags == names and stored.versions == versions:
            self.redis_hits += 1
            self._local.put(key, names, versions, stored.body, stored.expires_at - time.time())
            return stored.body
        self.misses += 1
        body = await load()
        try:
            with anyio.fail_after(self._io_timeout):
                kept = await self._tier.store(key, names, versions, body, ttl)
        except Exception as exc:
            self._link_lost(exc)
            return body
        if not kept or not self._local.put(key, names, versions, body, ttl):
            self.store_conflicts += 1
        return body

    def _detach_flights(self, tags: Iterable[str]) -> None:
        touched = set(tags)
        if EVERY_ENTRY in touched:
            self._flights.clear()
            return
        stale = [
            key for key, flight in self._flights.items() if not touched.isdisjoint(flight.tags)
        ]
        for key in stale:
            del self._flights[key]

    def _on_tags_invalidated(self, event: CacheTagsInvalidated) -> None:
        self.invalidations_received += len(event.tags)
        self._detach_flights(event.tags)
        self._local.raise_versions(event.tags, event.versions)

    async def _on_bus_connected(self) -> None:
        self._local.distrust()

    async def _recover(self, tier: RedisTier) -> None:
        try:
            with anyio.fail_after(self._io_timeout):
                if self._raise_all_pending:
                    asked_at = self._clock()
                    versions = await tier.bump([EVERY_ENTRY])
                    self._local.raise_versions([EVERY_ENTRY], versions, checked_at=asked_at)
                    await self._bus.publish(
                        CacheTagsInvalidated(
                            tags=[EVERY_ENTRY], versions=list(versions), origin=self._instance_id
                        )
                    )
                    self._raise_all_pending = False
                else:
                    await tier.ping()
        except Exception as exc:
            self._link_lost(exc)
            return
        if not self._redis_up:
            logger.info("Redis answers again; cache tiers back in use")
        self._redis_up = True

    def _link_lost(self, exc: BaseException) -> None:
        self.redis_errors += 1
        if self._redis_up:
            logger.warning("Redis unreachable (%r): cache reads go to the database", exc)
        self._redis_up = False

    def _mode(self) -> str:
        if not self._enabled:
            return "off"
        if self._tier is None:
            return "local"
        return "synced" if self._redis_up else "degraded"


def _tag_list(tags: Iterable[str]) -> Iterable[str]:
    if isinstance(tags, str):
        raise TypeError(f"tags must be a sequence of tags, not the string {tags!r}")
    return tags
