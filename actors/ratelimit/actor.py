"""Rate-limit actor: GCRA decisions in process, a cluster budget synced to Redis in batches.

A decision for a general policy is a local computation (`GcraStore.check`) plus an in-memory
record of the units used; every `flush_seconds` the actor sends what it used to Redis in one
round trip and merges back the cluster's backlog, so N instances together admit the policy's
limit (with the bounded over-admission stated in `redis_sync`). Strict policies (login,
password reset) are decided atomically in Redis, one round trip each.

While Redis is unreachable no request fails: general policies fall back to local buckets that
hold each instance to its share (limit / instances last seen), strict policies to a local
bucket of the same share; both count `fallback_decisions` and report the actor degraded.
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
from actors.ratelimit.gcra import Decision, GcraStore, backlog_decision
from actors.ratelimit.policy import RatePolicy
from actors.ratelimit.redis_sync import GlobalBudgetSync, StrictLimiter

logger = logging.getLogger("sevenp.ratelimit")

_HEARTBEAT_SECONDS = 2.0
_INSTANCE_TTL_SECONDS = 10.0
_SWEEP_PER_TICK = 2_000


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
        self._store = GcraStore(max_keys=max_keys, clock=clock)
        self._sync = GlobalBudgetSync(prefix=prefix)
        self._strict = StrictLimiter(prefix=prefix)
        self._policies: dict[str, RatePolicy] = {}
        self._shares: dict[str, RatePolicy] = {}
        self._redis_up = redis is not None
        self._instances = 1
        self._counts = {"allowed": 0, "limited": 0, "fallback_decisions": 0, "flush_failures": 0}

    @property
    def degraded(self) -> bool:
        return self._redis is not None and not self._redis_up

    def details(self) -> Mapping[str, object]:
        return {
            **self._counts,
            "keys": len(self._store),
            "pending_sync": len(self._sync),
            "instances": self._instances,
            "mode": "local"
            if self._redis is None
            else ("synced" if self._redis_up else "degraded"),
        }

    def _mode(self) -> str:
        if self._redis is None:
            return "local"
        return "synced" if self._redis_up else "degraded"

    def admit_local(self, policy: RatePolicy, key: str) -> int:
        """A general policy's decision on the hot path: `GcraStore.admit`'s answer, no I/O."""
        return self._admit_local(policy, key)[1]

    def check_local(self, policy: RatePolicy, key: str) -> Decision:
        """`admit_local` as a full Decision."""
        decided, admitted = self._admit_local(policy, key)
        return backlog_decision(decided, admitted)

    def _admit_local(self, policy: RatePolicy, key: str) -> tuple[RatePolicy, int]:
        """The policy actually applied (the instance's share while Redis is down) and the answer."""
        if self._redis is not None and not self._redis_up:
            self._counts["fallback_decisions"] += 1
            policy = self._share(policy)
            admitted = self._store.admit(policy, key)
        else:
            admitted = self._store.admit(policy, key)
            if admitted >= 0 and self._redis is not None:
                self._sync.record(policy, key)
        self._counts["allowed" if admitted >= 0 else "limited"] += 1
        return policy, admitted

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
                self._count(decision)
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
        target = self._share(policy) if self.degraded else policy
        self._store.refund(target, key)
        if self._redis is not None and self._redis_up and not policy.strict:
            self._sync.record(policy, key, -1.0)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        redis = self._redis
        next_heartbeat = 0.0
        while True:
            await anyio.sleep(self._flush_seconds)
            self._store.sweep(_SWEEP_PER_TICK)
            if redis is None:
                continue
            now = anyio.current_time()
            if now >= next_heartbeat:
                next_heartbeat = now + _HEARTBEAT_SECONDS
                await self._heartbeat(redis)
            await self._flush(redis)

    async def _flush(self, redis: Redis) -> None:
        if not len(self._sync):
            return
        try:
            with anyio.fail_after(self._timeout):
                backlogs = await self._sync.flush(redis)
        except Exception as exc:
            self._counts["flush_failures"] += 1
            self._link_lost(exc)
            return
        self._link_back()
        for (name, key), backlog in backlogs.items():
            policy = self._policies.get(name)
            if policy is not None:
                self._store.merge_remote(policy, key, backlog)

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

    def register(self, policy: RatePolicy) -> None:
        """Make a policy known, so the cluster backlog flushed for it can be merged back."""
        self._policies[policy.name] = policy

    def _share(self, policy: RatePolicy) -> RatePolicy:
        share = self._shares.get(policy.name)
        if share is None:
            limit = max(1, math.floor(policy.limit / self._instances))
            share = replace(policy, name=f"{policy.name}~share", limit=limit)
            self._shares[policy.name] = share
        return share

    def _count(self, decision: Decision) -> None:
        self._counts["allowed" if decision.allowed else "limited"] += 1

    def _link_lost(self, exc: BaseException) -> None:
        if self._redis_up:
            logger.warning("rate limits: Redis unreachable (%r); local fallback", exc)
        self._redis_up = False

    def _link_back(self) -> None:
        if not self._redis_up:
            logger.info("rate limits: Redis back; cluster budget synced again")
        self._redis_up = True
