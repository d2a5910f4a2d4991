"""One worker's runtime: pool, Redis client, actors, supervisor and services."""

from __future__ import annotations

import logging
import os
import secrets
import select
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import FrameType

import anyio
import redis.asyncio as aioredis

from actors.audit import AuditActor
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
from server.cluster import InstanceRegistry
from server.db.audit import AuditPartitions, PostgresAuditSink
from server.db.outbox import PostgresOutbox
from server.db.pool import Pool, create_pool
from server.db.replica import observe_reads, replica_probe
from server.db.retention import PostgresRetention
from server.db.session_store import PostgresSessionStore
from server.db.unit import Database
from server.granian_options import WORKER_EXIT_GRACE_SECONDS
from server.http.in_flight import InFlight
from server.http.limits import RateLimits
from server.mail.senders import sender_from_url
from server.probes import memory_probe, postgres_probe, redis_probe, service_probe
from server.read_replica import read_routing, share_write_marks
from server.security.passwords import password_hasher
from server.security.tokens import TokenIssuer
from server.security.verified_tokens import VerifiedTokens
from server.services.accounts import Accounts
from server.services.analytics import Analytics
from server.services.assessments import Assessments
from server.services.audit import AuditLog
from server.services.auth import Authentication, AuthPolicy
from server.services.course_analytics import CourseAnalyticsReader
from server.services.courses import Courses
from server.services.enrollments import Enrollments
from server.services.exports import Exports
from server.services.gradebook import Gradebooks
from server.services.grades import Grades
from server.services.health_report import HealthReporter
from server.services.idempotency import IdempotencyKeys
from server.services.lessons import Lessons
from server.services.reviews import Reviews
from server.services.revocation import Revocations
from server.services.submissions import Submissions
from server.services.system import SystemMonitor
from server.settings import Settings
from server.telemetry.instruments import Observed, observe
from server.telemetry.prometheus import MetricsShare
from server.telemetry.redis import MeasuredRedis
from server.telemetry.setup import Telemetry, setup_telemetry

logger = logging.getLogger("sevenp.runtime")

# Of a shutdown's budget, what requests in flight leave for stopping actors and closing pools.
_CLEANUP_RESERVE_SECONDS = 2.0


@dataclass(slots=True)
class Runtime:
    settings: Settings
    pool: Pool
    database: Database
    read_pool: Pool | None
    redis: aioredis.Redis | None
    health: HealthActor
    bus: SyncBus
    sessions: SessionActor
    mail: MailActor
    cache: CacheActor
    audit: AuditActor
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
    assessments: Assessments
    submissions: Submissions
    grades: Grades
    gradebooks: Gradebooks
    analytics: Analytics
    exports: Exports
    idempotency_keys: IdempotencyKeys
    audit_log: AuditLog
    system: SystemMonitor
    instances: InstanceRegistry
    instance_id: str
    started_at: float
    telemetry: Telemetry
    in_flight: InFlight = field(default_factory=InFlight)
    # Set where the runtime is the process's whole job (a Granian worker), never in a test's.
    exit_when_overdue: bool = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the pool, start the actors in order; on exit drain and stop in reverse."""
        await self.pool.open(wait=False)
        if self.read_pool is not None:
            await self.read_pool.open(wait=False)
        watchdog = self._watch_stop_signals() if self.exit_when_overdue else None
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.supervisor.run)
                try:
                    yield
                finally:
                    self.health.begin_draining()
                    if watchdog is not None:
                        watchdog.begin()
                    await self._shut_down((watchdog and watchdog.began) or time.monotonic())
                    tg.cancel_scope.cancel()
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _watch_stop_signals(self) -> ExitWatchdog:
        """Start the shutdown clock when a stop signal arrives, not when Granian gets to it.

        Granian's handlers stay: ours runs first, then the one it replaced.
        """
        watchdog = ExitWatchdog(self.settings.drain_seconds + WORKER_EXIT_GRACE_SECONDS)
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def on_signal(
                signum: int, frame: FrameType | None, previous: object = previous
            ) -> None:
                watchdog.begin()
                if callable(previous):
                    previous(signum, frame)

            signal.signal(signum, on_signal)
        return watchdog

    async def _shut_down(self, began: float) -> None:
        """Drain, stop the actors in reverse, close the pool and Redis: all in `DRAIN_SECONDS`
        from `began` (on `time.monotonic()`'s clock)."""
        budget = self.settings.drain_seconds
        left = budget - (time.monotonic() - began)
        deadline = anyio.current_time() + left
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            if not await self.in_flight.drained(left - min(left / 2, _CLEANUP_RESERVE_SECONDS)):
                logger.warning("drain deadline passed with %d in flight", self.in_flight.count)
            await self.supervisor.stop(deadline=deadline)
            await self._withdraw()
            self.bus.close()
            await self.pool.close(timeout=max(0.0, deadline - anyio.current_time()))
            if self.read_pool is not None:
                await self.read_pool.close(timeout=max(0.0, deadline - anyio.current_time()))
            if self.redis is not None:
                await self.redis.aclose()
            self.telemetry.shutdown()
        if scope.cancelled_caught:
            logger.warning("shutdown budget of %gs spent; the rest is abandoned", budget)

    async def _withdraw(self) -> None:
        try:
            with anyio.fail_after(self.settings.health_probe_timeout_seconds):
                await self.instances.withdraw()
        except Exception as exc:
            logger.warning("could not withdraw this instance's heartbeat: %r", exc)


class ExitWatchdog:
    """Ends the process `seconds` after `begin()` unless `cancel()` comes first.

    `begin` is safe in a signal handler: a thread of its own waits on a pipe, and neither
    side takes a lock another thread, or the interrupted code, could hold.
    """

    def __init__(self, seconds: float) -> None:
        self.began: float | None = None
        self._seconds = seconds
        self._read, self._write = os.pipe()
        threading.Thread(target=self._watch, name="exit-watchdog", daemon=True).start()

    def begin(self) -> None:
        if self.began is None:
            self.began = time.monotonic()
            os.write(self._write, b"b")

    def cancel(self) -> None:
        os.write(self._write, b"c")

    def _watch(self) -> None:
        while (note := os.read(self._read, 1)) != b"b":
            if note == b"c":
                return
        exit_at = (self.began or time.monotonic()) + self._seconds
        while (left := exit_at - time.monotonic()) > 0:
            readable, _, _ = select.select([self._read], [], [], left)
            if readable and os.read(self._read, 1) == b"c":
                return
        os.write(2, f"shutdown overran {self._seconds:g}s; exiting now\n".encode())
        os._exit(70)


def _redis_client(url: str, timeout: float, telemetry: Telemetry) -> aioredis.Redis:
    client = MeasuredRedis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        max_connections=256,
    )
    assert isinstance(client, MeasuredRedis)
    return client.measured(telemetry.operation_duration, telemetry.tracer)


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
    settings: Settings,
    *,
    extra_actors: list[Actor] | None = None,
    main_pid: int | None = None,
    telemetry: Telemetry | None = None,
) -> Runtime:
    """The worker's runtime; `telemetry` defaults to the one the settings describe."""
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is unset; `sevenp serve` provides an embedded one")
    instance_id = uuid.uuid4().hex[:12]
    telemetry = telemetry or setup_telemetry(settings, instance_id)
    pool = create_pool(settings, settings.database_url)
    redis = (
        _redis_client(settings.redis_url, settings.health_probe_timeout_seconds, telemetry)
        if settings.redis_url
        else None
    )
    probes = [
        postgres_probe(settings.database_url, pool, settings.health_probe_timeout_seconds),
        memory_probe(settings.health_memory_limit_mb),
    ]
    if redis is not None:
        probes.insert(1, redis_probe(redis))
    read_pool, reads = read_routing(settings, pool)
    if reads is not None and settings.database_read_url:
        probes.append(
            replica_probe(
                reads,
                settings.database_read_url,
                settings.database_url,
                settings.health_probe_timeout_seconds,
            )
        )
    instances = InstanceRegistry(
        redis,
        prefix=settings.redis_prefix,
        instance_id=instance_id,
        ttl_seconds=3 * settings.health_interval_seconds + settings.health_probe_timeout_seconds,
        report=lambda: system.this_instance(),
    )
    health = HealthActor(
        probes,
        interval=settings.health_interval_seconds,
        timeout=settings.health_probe_timeout_seconds,
        services=[service_probe(name, url) for name, url in settings.service_urls().items()],
        heartbeat=instances.beat,
    )
    database = Database(
        pool,
        slow_query_ms=settings.slow_query_ms,
        budget_seconds=settings.db_timeout_seconds,
        available=lambda: not health.is_down("postgres"),
        duration=telemetry.operation_duration,
        tracer=telemetry.tracer,
        replica=reads,
    )
    bus = SyncBus(redis, channel=f"{settings.redis_prefix}events", instance_id=instance_id)
    if reads is not None:
        share_write_marks(reads, bus, instance_id)
        observe_reads(telemetry.meter, reads)
    sessions = SessionActor(
        store=PostgresSessionStore(database),
        bus=bus,
        instance_id=instance_id,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        last_seen_flush_seconds=settings.session_flush_seconds,
        resync_seconds=settings.session_resync_seconds,
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

    idempotency_keys = IdempotencyKeys(database)
    audit = AuditActor(
        PostgresAuditSink(database),
        flush_seconds=settings.audit_flush_seconds,
        batch_rows=settings.audit_batch_rows,
        capacity=settings.audit_queue_max,
        write_timeout=settings.db_timeout_seconds,
    )
    partitions = AuditPartitions(database, retention_days=settings.audit_retention_days)
    retention = RetentionActor(
        store=PostgresRetention(database),
        horizon_seconds=settings.retention_horizon_days * 86400,
        interval=settings.retention_interval_seconds,
        db_timeout=settings.db_timeout_seconds,
        maintenance={"audit_partitions": partitions.maintain},
    )
    telemetry_actors: list[Actor] = (
        []
        if telemetry.shared is None
        else [MetricsShare(telemetry.shared, interval=settings.metrics_share_seconds)]
    )
    supervisor = Supervisor(
        "root",
        [
            health,
            bus,
            sessions,
            rate_limiter,
            cache,
            mail,
            audit,
            retention,
            *telemetry_actors,
            *(extra_actors or []),
        ],
        strategy=Strategy.ONE_FOR_ONE,
        policy=RestartPolicy(max_restarts=5, within_seconds=30.0),
        on_escalate=on_escalate,
        stop_timeout=settings.drain_seconds,
    )
    hasher = password_hasher(settings, max_concurrency=settings.hash_concurrency)
    tokens = token_issuer(settings)
    revocations = Revocations(sessions)
    started_at = time.time()
    system = SystemMonitor(
        health,
        supervisor,
        instances,
        service_urls=settings.service_urls(),
        instance_id=instance_id,
        started_at=started_at,
        version=version("sevenp"),
    )
    in_flight = InFlight()
    courses = Courses(database, cache)
    enrollments = Enrollments(courses)
    assessments = Assessments(courses)
    submissions = Submissions(courses, assessments, enrollments)
    observe(
        telemetry.meter,
        Observed(
            pool=pool,
            in_flight=in_flight,
            supervisor=supervisor,
            sessions=sessions,
            cache=cache,
            mail=mail,
            rate_limiter=rate_limiter if settings.rate_limit_enabled else None,
        ),
    )
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
        read_pool=read_pool,
        redis=redis,
        health=health,
        bus=bus,
        sessions=sessions,
        mail=mail,
        cache=cache,
        audit=audit,
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
            audit_queue=audit,
            policy=auth_policy,
        ),
        health_reporter=HealthReporter(
            health, supervisor, instance_id=instance_id, started_at=started_at
        ),
        courses=courses,
        lessons=Lessons(courses),
        enrollments=enrollments,
        reviews=Reviews(courses),
        course_analytics=CourseAnalyticsReader(courses),
        assessments=assessments,
        submissions=submissions,
        grades=Grades(assessments, submissions),
        gradebooks=Gradebooks(courses),
        analytics=Analytics(),
        exports=Exports(database),
        idempotency_keys=idempotency_keys,
        audit_log=AuditLog(),
        system=system,
        instances=instances,
        instance_id=instance_id,
        started_at=started_at,
        telemetry=telemetry,
        in_flight=in_flight,
    )
