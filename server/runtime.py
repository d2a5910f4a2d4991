"""One worker's runtime: the pool, the Redis client, the actors and their supervisor."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import redis.asyncio as aioredis

from actors.base import Actor
from actors.health import HealthActor
from actors.supervisor import RestartPolicy, Strategy, Supervisor, SupervisorEscalated
from server.db.pool import Pool, create_pool
from server.probes import memory_probe, postgres_probe, redis_probe
from server.settings import Settings

logger = logging.getLogger("sevenp.runtime")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database_url: str
    pool: Pool
    redis: aioredis.Redis | None
    health: HealthActor
    supervisor: Supervisor
    instance_id: str
    started_at: float

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the pool, start the actors in order; on exit drain and stop in reverse."""
        await self.pool.open(wait=False)
        async with anyio.create_task_group() as tg:
            await tg.start(self.supervisor.run)
            try:
                yield
            finally:
                self.health.begin_draining()
                with anyio.CancelScope(shield=True):
                    await self.supervisor.stop()
                    await self.pool.close(timeout=self.settings.drain_seconds)
                    if self.redis is not None:
                        await self.redis.aclose()
                tg.cancel_scope.cancel()


def _redis_client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        max_connections=256,
    )


def build_runtime(settings: Settings, *, extra_actors: list[Actor] | None = None) -> Runtime:
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is unset; `sevenp serve` provides an embedded one")
    pool = create_pool(settings, settings.database_url)
    redis = (
        _redis_client(settings.redis_url, settings.health_probe_timeout_seconds)
        if settings.redis_url
        else None
    )
    probes = [
        postgres_probe(settings.database_url, pool, settings.health_probe_timeout_seconds),
        memory_probe(settings.health_memory_limit_mb),
    ]
    if redis is not None:
        probes.insert(1, redis_probe(redis))
    health = HealthActor(
        probes,
        interval=settings.health_interval_seconds,
        timeout=settings.health_probe_timeout_seconds,
    )

    def on_escalate(exc: SupervisorEscalated) -> None:
        logger.critical("supervision gave up (%s); shutting down", exc)
        health.mark_failed(str(exc))
        if settings.sevenp_main_pid is not None:
            os.kill(settings.sevenp_main_pid, signal.SIGTERM)

    supervisor = Supervisor(
        "root",
        [health, *(extra_actors or [])],
        strategy=Strategy.ONE_FOR_ONE,
        policy=RestartPolicy(max_restarts=5, within_seconds=30.0),
        on_escalate=on_escalate,
        stop_timeout=settings.drain_seconds,
    )
    return Runtime(
        settings=settings,
        database_url=settings.database_url,
        pool=pool,
        redis=redis,
        health=health,
        supervisor=supervisor,
        instance_id=uuid.uuid4().hex[:12],
        started_at=time.time(),
    )
