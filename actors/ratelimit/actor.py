"""Rate-limit actor: GCRA decisions in process, a cluster budget synced to Redis in batches.

A decision for a general policy is a local computation (`GcraStore.check`) that also records the
unit for the cluster sync; every `flush_seconds` the actor sends what it admitted to Redis in one
round trip and merges back the cluster's backlog, so N instances together admit the policy's
limit, with the bounded over-admission stated in `redis_sync`. Strict policies (login, password
reset) are decided atomically in Redis, one round trip each.

While Redis is unreachable no request fails: general policies fall back to local buckets that
hold each instance to its share (limit / instances last seen), strict policies to a local
bucket of the same share; both count `fallback_decisions` and report the actor degraded. Only a
completed round trip (a heartbeat or a flush that sent units) marks Redis reachable again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import anyio
from anyio.abc import TaskStatus
from redis.asyncio import Redis

from actors.base import Actor
from actors.ratelimit.gcra import Decision, GcraStore
from actors.ratelimit.policy import RatePolicy
from actors.ratelimit.redis_sync import GlobalBudgetSync, StrictLimiter

logger = logging.getLogger("sevenp.ratelimit")

_HEARTBEAT_SECONDS = 2.0
_INSTANCE_TTL_SECONDS = 10.0
_SWEEP_PER_TICK = 2_000
_KEEP_FULL_SECONDS = 10.0


class RateLimitActor(Actor):
    def __init__(
        self,
        *,
        redis: Redis | None,
        instance_id: str,
        prefix: str = "sevenp:",
        flush_seconds: float = 0.1,
        redis_timeout: float = 0.5,
        max_keys: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "ratelimit"
        self._redis = redis
        self._instance_id = instance_id
        self._prefix = prefix
        self._flush_seconds = flush_seconds
        self._timeout = redis_timeout
        self._sync = GlobalBudgetSync(prefix=prefix)
        self._store = GcraStore(
            max_keys=max_keys, clock=clock, keep_full_seconds=_KEEP_FULL_SECONDS
        )
        self._fallback = GcraStore(
            max_keys=max_keys, clock=clock, keep_full_seconds=_KEEP_FULL_SECONDS
        )
        self._strict = StrictLimiter(prefix=prefix)
        self._policies: dict[str, RatePolicy] = {}
        self._shares: dict[str, RatePolicy] = {}
        self._redis_up = redis is not None
        self._instances = 1
        self._counts = {"limited_in_redis": 0, "fallback_decisions": 0, "flush_failures": 0}
        self.decisions = {"allowed": 0, "limited": 0, "degraded": 0}
        """Decisions by outcome; `degraded` ones were taken on the local share, Redis being down."""
        self.on_change: Callable[[], None] | None = None
        """Called when what `applied` answers may have changed (Redis lost or back, shares)."""

    @property
    def degraded(self) -> bool:
        return self._redis is not None and not self._redis_up

    def details(self) -> Mapping[str, object]:
        return {
            "limited": self._store.refused
            + self._fallback.refused
            + self._counts["limited_in_redis"],
            "fallback_decisions": self._counts["fallback_decisions"],
            "flush_failures": self._counts["flush_failures"],
            "keys": len(self._store) + len(self._fallback),
            "units_to_sync": len(self._sync),
            "instances": self._instances,
            "mode": self._mode(),
        }

    def _mode(self) -> str:
        if self._redis is None:
            return "local"
        return "synced" if self._redis_up else "degraded"

    def check_local(self, policy: RatePolicy, key: str) -> Decision:
        """Decide `policy` for `key` in process, no I/O: against the cluster-synced buckets, or,
        while Redis is down, against the instance's share of the policy."""
        if self.degraded:
            self._counts["fallback_decisions"] += 1
            self.decisions["degraded"] += 1
            return self._fallback.check(self._share(policy), key)
        decision = self._store.check(policy, key)
        if decision.allowed:
            self.decisions["allowed"] += 1
            if self._redis is not None:
                self._sync.record(policy, key)
        else:
            self.decisions["limited"] += 1
        return decision

    async def check(self, policy: RatePolicy, key: str) -> Decision:
        """Any policy: strict ones ask Redis (falling back locally), others are `check_local`."""
        if not policy.strict or self._redis is None:
            return self.check_local(policy, key)
        if self._redis_up:
            try:
                with anyio.fail_after(self._timeout):
                    decision = await self._strict.check(self._redis, policy, key)
            except Exception as exc:
                self._link_lost(exc)
            else:
                if decision.allowed:
                    self.decisions["allowed"] += 1
                else:
                    self._counts["limited_in_redis"] += 1
                    self.decisions["limited"] += 1
                return decision
        return self.check_local(policy, key)

    async def refund(self, policy: RatePolicy, key: str) -> None:
        """Give one unit back (a successful request of a skip-successful policy)."""
        if policy.strict and self._redis is not None and self._redis_up:
            try:
                with anyio.fail_after(self._timeout):
                    await self._strict.refund(self._redis, policy, key)
            except Exception as exc:
                self._link_lost(exc)
            return
        if self.degraded:
            self._fallback.refund(self._share(policy), key)
            return
        self._store.refund(policy, key)
        if self._redis is not None:
            self._sync.record(policy, key, -1)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        redis = self._redis
        next_heartbeat = 0.0
        while True:
            await anyio.sleep(self._flush_seconds)
            self._sweep()
            if redis is None:
                continue
            now = anyio.current_time()
            if now >= next_heartbeat:
                next_heartbeat = now + _HEARTBEAT_SECONDS
                await self._heartbeat(redis)
            await self._flush(redis)

    def _sweep(self) -> None:
        """Expire idle keys; the budget is twice the inserts since the last sweep, plus a floor."""
        for store in (self._store, self._fallback):
            store.sweep(_SWEEP_PER_TICK + 2 * store.inserted_since_sweep)

    async def _flush(self, redis: Redis) -> None:
        try:
            with anyio.fail_after(self._timeout):
                backlogs = await self._sync.flush(redis)
        except Exception as exc:
            self._counts["flush_failures"] += 1
            self._link_lost(exc)
            return
        if backlogs is None:
            return  # nothing was sent, so nothing was learnt about the link
        self._link_back()
        for name, by_key in backlogs.items():
            policy = self._policies.get(name)
            if policy is not None:
                self._store.merge_remote(policy, by_key)

    async def _heartbeat(self, redis: Redis) -> None:
        members = f"{self._prefix}rl:instances"
        now = time.time()
        try:
            with anyio.fail_after(self._timeout):
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.zadd(members, {self._instance_id: now})
                    pipe.zremrangebyscore(members, "-inf", now - _INSTANCE_TTL_SECONDS)
                    pipe.zcard(members)
                    pipe.expire(members, int(_INSTANCE_TTL_SECONDS * 6))
                    results = await pipe.execute()
        except Exception as exc:
            self._link_lost(exc)
            return
        self._link_back()
        count = max(1, int(results[2]))
        if count != self._instances:
            self._instances = count
            self._shares.clear()
            self._mode_changed()

    def register(self, policy: RatePolicy) -> None:
        """Make a policy known, so the cluster backlog flushed for it can be merged back."""
        self._policies[policy.name] = policy

    def applied(self, policy: RatePolicy) -> RatePolicy:
        """The policy this instance enforces for `policy` now: its share while Redis is down."""
        return self._share(policy) if self.degraded else policy

    def _share(self, policy: RatePolicy) -> RatePolicy:
        share = self._shares.get(policy.name)
        if share is None:
            limit = max(1, math.floor(policy.limit / self._instances))
            share = replace(policy, limit=limit)
            self._shares[policy.name] = share
        return share

    def _mode_changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _link_lost(self, exc: BaseException) -> None:
        if not self._redis_up:
            return
        logger.warning("rate limits: Redis unreachable (%r); local fallback", exc)
        self._redis_up = False
        self._mode_changed()

    def _link_back(self) -> None:
        if self._redis_up:
            return
        logger.info("rate limits: Redis back; cluster budget synced again")
        self._redis_up = True
        self._mode_changed()
