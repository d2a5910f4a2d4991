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
from actors.cache import CacheActor
from actors.health import CheckResult, HealthActor
from actors.mail import MailActor
from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.policy import RatePolicy
from actors.retention import RetentionActor
from actors.session import SessionActor
from actors.supervisor import RestartPolicy, Strategy, Supervisor, SupervisorEscalated
from server.db.outbox import PostgresOutbox
from server.db.pool import Pool, create_pool
from server.db.session_store import PostgresSessionStore
from server.db.unit import Database
from server.http.in_flight import InFlight
from server.http.limits import RateLimits
from server.mail.senders import sender_from_url
from server.probes import memory_probe, postgres_probe, redis_probe
from server.security.passwords import password_hasher
from server.security.tokens import TokenIssuer
from server.security.verified_tokens import VerifiedTokens
from server.services.accounts import Accounts
from server.services.analytics import Analytics
from server.services.auth import Authentication, AuthPolicy
from server.services.course_analytics import CourseAnalyticsReader
from server.services.courses import Courses
from server.services.enrollments import Enrollments
from server.services.exports import Exports
from server.services.health_report import HealthReporter
from server.services.idempotency import IdempotencyKeys
from server.services.lessons import Lessons
from server.services.reviews import Reviews
from server.services.revocation import Revocations
from server.settings import Settings

logger = logging.getLogger("sevenp.runtime")


@dataclass(slots=True)
class Runtime:
    settings: Settings
    pool: Pool
    database: Database
    redis: aioredis.Redis | None
    health: HealthActor
    bus: SyncBus
    sessions: SessionActor
    mail: MailActor
    cache: CacheActor
    supervisor: Supervisor
    tokens: TokenIssuer
    verified_tokens: VerifiedTokens
    rate_limits: RateLimits | None
    accounts: Accounts
    auth: Authentication
    health_reporter: HealthReporter
    courses: Courses
    lessons: Lessons
    enrollments: Enrollments
    reviews: Reviews
    course_analytics: CourseAnalyticsReader
    analytics: Analytics
    exports: Exports
    idempotency_keys: IdempotencyKeys
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


def build_runtime(
    settings: Settings, *, extra_actors: list[Actor] | None = None, main_pid: int | None = None
) -> Runtime:
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
    database = Database(pool, slow_query_ms=settings.slow_query_ms)
    bus = SyncBus(redis, channel=f"{settings.redis_prefix}events", instance_id=instance_id)
    sessions = SessionActor(
        store=PostgresSessionStore(database),
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
        quiet_seconds=settings.rate_limit_quiet_seconds,
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
    cache = CacheActor(
        redis=redis,
        bus=bus,
        instance_id=instance_id,
        prefix=settings.redis_prefix,
        enabled=settings.cache_enabled,
        local_max_entries=settings.cache_local_max_entries,
        local_ttl=settings.cache_local_ttl_seconds,
        default_ttl=settings.cache_ttl_seconds,
    )
    health.add_derived_check(
        "cache", lambda: _link_check("cache", cache.degraded, "cached reads go to PostgreSQL")
    )
    mail = MailActor(
        outbox=PostgresOutbox(database),
        sender=sender_from_url(settings.mail_url, mail_from=settings.mail_from),
        poll_seconds=settings.mail_poll_seconds,
    )

    def on_escalate(exc: SupervisorEscalated) -> None:
        logger.critical("supervision gave up (%s); shutting down", exc)
        health.mark_failed(str(exc))
        if main_pid is not None:
            os.kill(main_pid, signal.SIGTERM)

    database = Database(pool, slow_query_ms=settings.slow_query_ms)
    idempotency_keys = IdempotencyKeys(database)
    retention = RetentionActor({"idempotency_keys": idempotency_keys.purge_expired})
    supervisor = Supervisor(
        "root",
        [health, bus, sessions, rate_limiter, cache, mail, retention, *(extra_actors or [])],
        strategy=Strategy.ONE_FOR_ONE,
        policy=RestartPolicy(max_restarts=5, within_seconds=30.0),
        on_escalate=on_escalate,
        stop_timeout=settings.drain_seconds,
    )
    hasher = password_hasher(settings, max_concurrency=settings.hash_concurrency)
    tokens = token_issuer(settings)
    revocations = Revocations(sessions)
    started_at = time.time()
    courses = Courses(database, cache)
    auth_policy = AuthPolicy(
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
        refresh_ttl_remember_seconds=settings.refresh_token_remember_ttl_seconds,
        max_failed_logins=settings.max_failed_logins,
        lock_seconds=settings.lockout_seconds,
    )
    return Runtime(
        settings=settings,
        pool=pool,
        database=database,
        redis=redis,
        health=health,
        bus=bus,
        sessions=sessions,
        mail=mail,
        cache=cache,
        supervisor=supervisor,
        tokens=tokens,
        verified_tokens=VerifiedTokens(tokens),
        rate_limits=(
            RateLimits(rate_limiter, policies, settings.trusted_proxies)
            if settings.rate_limit_enabled
            else None
        ),
        accounts=Accounts(revocations),
        auth=Authentication(
            database=database,
            hasher=hasher,
            tokens=tokens,
            revocations=revocations,
            mail=mail,
            policy=auth_policy,
        ),
        health_reporter=HealthReporter(
            health, supervisor, instance_id=instance_id, started_at=started_at
        ),
        courses=courses,
        lessons=Lessons(courses),
        enrollments=Enrollments(courses),
        reviews=Reviews(courses),
        course_analytics=CourseAnalyticsReader(courses),
        analytics=Analytics(),
        exports=Exports(database),
        idempotency_keys=idempotency_keys,
        instance_id=instance_id,
        started_at=started_at,
    )
