"""One worker's runtime: pool, Redis client, actors, supervisor and services."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import redis.asyncio as aioredis

from actors.base import Actor
from actors.bus import SyncBus
from actors.health import CheckResult, HealthActor
from actors.mail import MailActor
from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.policy import RatePolicy
from actors.session import SessionActor
from actors.supervisor import RestartPolicy, Strategy, Supervisor, SupervisorEscalated
from server.db.pool import Pool, create_pool
from server.http.in_flight import InFlight
from server.http.limits import RateLimits
from server.mail.senders import sender_from_url
from server.probes import memory_probe, postgres_probe, redis_probe
from server.security.passwords import Argon2Settings, PasswordHasher
from server.security.tokens import TokenIssuer
from server.security.verified_tokens import VerifiedTokens
from server.services.accounts import Accounts
from server.services.auth import Authentication, AuthPolicy
from server.services.revocation import Revocations
from server.settings import Settings

logger = logging.getLogger("sevenp.runtime")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    pool: Pool
    redis: aioredis.Redis | None
    health: HealthActor
    bus: SyncBus
    sessions: SessionActor
    mail: MailActor
    supervisor: Supervisor
    tokens: TokenIssuer
    verified_tokens: VerifiedTokens
    rate_limits: RateLimits | None
    accounts: Accounts
    auth: Authentication
    instance_id: str
    started_at: float
    in_flight: InFlight = field(default_factory=InFlight)

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
                    if not await self.in_flight.drained(self.settings.drain_seconds):
                        logger.warning(
                            "drain deadline passed with %d in flight", self.in_flight.count
                        )
                    await self.supervisor.stop()
                    self.bus.close()
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


def token_issuer(settings: Settings) -> TokenIssuer:
    if settings.jwt_private_key_file:
        public = settings.jwt_public_key_file
        return TokenIssuer(
            private_key_pem=Path(settings.jwt_private_key_file).read_bytes(),
            public_key_pem=Path(public).read_bytes() if public else None,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_seconds=settings.access_token_ttl_seconds,
        )
    secret = settings.jwt_secret
    if secret is None:
        logger.warning("JWT_SECRET unset: a random secret for this process; tokens die with it")
        secret = secrets.token_urlsafe(48)
    return TokenIssuer(
        secret=secret.encode(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
    )


def _link_check(name: str, degraded: bool, consequence: str) -> CheckResult:
    return CheckResult(
        name=name,
        status="degraded" if degraded else "up",
        required=False,
        error=f"Redis link down: {consequence}" if degraded else None,
        checked_at=time.time(),
    )


def rate_policies(settings: Settings) -> dict[str, RatePolicy]:
    general = settings.rate(settings.rate_limit_general)
    api = settings.rate(settings.rate_limit_api)
    auth = settings.rate(settings.rate_limit_auth)
    return {
        "general": RatePolicy("general", *general),
        "api": RatePolicy("api", *api),
        "auth": RatePolicy("auth", *auth, strict=True, skip_successful=True),
    }


def build_runtime(settings: Settings, *, extra_actors: list[Actor] | None = None) -> Runtime:
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is unset; `sevenp serve` provides an embedded one")
    instance_id = uuid.uuid4().hex[:12]
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
    bus = SyncBus(redis, channel=f"{settings.redis_prefix}events", instance_id=instance_id)
    sessions = SessionActor(
        pool=pool,
        bus=bus,
        instance_id=instance_id,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        last_seen_flush_seconds=settings.session_flush_seconds,
    )
    rate_limiter = RateLimitActor(
        redis=redis,
        instance_id=instance_id,
        prefix=settings.redis_prefix,
        flush_seconds=settings.rate_limit_flush_seconds,
        max_keys=settings.rate_limit_max_keys,
    )
    policies = rate_policies(settings)
    for policy in policies.values():
        rate_limiter.register(policy)
    health.add_derived_check(
        "sessions",
        lambda: _link_check("sessions", sessions.degraded, "checking sessions in PostgreSQL"),
    )
    health.add_derived_check(
        "ratelimit",
        lambda: _link_check("ratelimit", rate_limiter.degraded, "per-instance limits"),
    )
    mail = MailActor(
        pool=pool,
        sender=sender_from_url(settings.mail_url, mail_from=settings.mail_from),
        poll_seconds=settings.mail_poll_seconds,
    )

    def on_escalate(exc: SupervisorEscalated) -> None:
        logger.critical("supervision gave up (%s); shutting down", exc)
        health.mark_failed(str(exc))
        if settings.sevenp_main_pid is not None:
            os.kill(settings.sevenp_main_pid, signal.SIGTERM)

    supervisor = Supervisor(
        "root",
        [health, bus, sessions, rate_limiter, mail, *(extra_actors or [])],
        strategy=Strategy.ONE_FOR_ONE,
        policy=RestartPolicy(max_restarts=5, within_seconds=30.0),
        on_escalate=on_escalate,
        stop_timeout=settings.drain_seconds,
    )
    hasher = PasswordHasher(
        Argon2Settings(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        ),
        max_concurrency=settings.hash_concurrency,
    )
    tokens = token_issuer(settings)
    revocations = Revocations(pool, sessions)
    auth_policy = AuthPolicy(
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        refresh_ttl_remember_seconds=settings.refresh_token_remember_ttl_seconds,
        max_failed_logins=settings.max_failed_logins,
        lock_seconds=settings.lockout_seconds,
    )
    return Runtime(
        settings=settings,
        pool=pool,
        redis=redis,
        health=health,
        bus=bus,
        sessions=sessions,
        mail=mail,
        supervisor=supervisor,
        tokens=tokens,
        verified_tokens=VerifiedTokens(tokens),
        rate_limits=(
            RateLimits(rate_limiter, policies, settings.trusted_proxies)
            if settings.rate_limit_enabled
            else None
        ),
        accounts=Accounts(pool, revocations),
        auth=Authentication(
            pool=pool,
            hasher=hasher,
            tokens=tokens,
            revocations=revocations,
            mail=mail,
            policy=auth_policy,
        ),
        instance_id=instance_id,
        started_at=time.time(),
    )
