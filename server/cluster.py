"""The cluster's live instances: each writes a heartbeat to Redis, with a TTL, every interval.

`{prefix}instances:{id}` holds the instance's report (id, pid, version, start time, readiness
and its actors' states from the supervisor) and expires after `ttl` seconds, so an instance
that dies without a word leaves the list within one TTL; one stopped gracefully withdraws its
key at once. Without Redis the list is this instance alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec
import redis.asyncio as aioredis

from schemas.system import InstanceReport

logger = logging.getLogger("sevenp.cluster")

_decoder = msgspec.json.Decoder(InstanceReport)
_encoder = msgspec.json.Encoder()


class InstanceRegistry:
    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        prefix: str,
        instance_id: str,
        ttl_seconds: float,
        report: Callable[[], InstanceReport],
    ) -> None:
        self._redis = redis
        self._key_prefix = f"{prefix}instances:"
        self._key = f"{self._key_prefix}{instance_id}"
        self._ttl_ms = max(1000, int(ttl_seconds * 1000))
        self._report = report

    async def beat(self) -> None:
        """Write this instance's report with its TTL (the health actor calls it each round)."""
        if self._redis is not None:
            await self._redis.set(self._key, _encoder.encode(self._report()), px=self._ttl_ms)

    async def withdraw(self) -> None:
        """Remove this instance's key (a graceful stop)."""
        if self._redis is not None:
            await self._redis.delete(self._key)

    async def live(self) -> list[InstanceReport]:
        """Every instance whose heartbeat has not expired, this one included, by start time."""
        if self._redis is None:
            return [self._report()]
        keys = [key async for key in self._redis.scan_iter(match=f"{self._key_prefix}*", count=500)]
        found: dict[str, InstanceReport] = {}
        for raw in await self._redis.mget(keys) if keys else []:
            if raw is None:
                continue  # expired between the scan and the read
            try:
                report = _decoder.decode(raw)
            except msgspec.DecodeError:
                logger.warning("unreadable heartbeat under %s*", self._key_prefix)
                continue
            found[report.instance_id] = report
        current = self._report()
        found[current.instance_id] = current
        return sorted(found.values(), key=lambda r: (r.started_at, r.instance_id))
