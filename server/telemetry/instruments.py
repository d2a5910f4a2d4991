"""Observable instruments: what the runtime already counts, read when metrics are collected.

Nothing here runs per request. Counters the actors keep as plain integers (their `details`,
the supervisor's statuses) become OpenTelemetry observable counters and gauges; the pool's
statistics follow the semantic conventions' `db.client.connection.*`, the process's memory
and CPU `process.*`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from actors.cache import CacheActor
from actors.mail import MailActor
from actors.ratelimit.actor import RateLimitActor
from actors.session import SessionActor
from actors.supervisor import Supervisor
from server.db.pool import Pool
from server.http.in_flight import InFlight

Callback = Callable[[CallbackOptions], Iterable[Observation]]
POOL = {"db.client.connection.pool.name": "sevenp"}


@dataclass(frozen=True, slots=True)
class Observed:
    """The parts of a worker's runtime that metrics read."""

    pool: Pool
    in_flight: InFlight
    supervisor: Supervisor
    sessions: SessionActor
    cache: CacheActor
    mail: MailActor
    rate_limiter: RateLimitActor | None


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def observe(meter: Meter, parts: Observed) -> None:
    """Register every observable instrument of the runtime on `meter`."""
    _http(meter, parts)
    _pool(meter, parts.pool)
    _actors(meter, parts)
    _process(meter)


def _http(meter: Meter, parts: Observed) -> None:
    def active(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(parts.in_flight.count, {"url.scheme": "http"})

    meter.create_observable_up_down_counter(
        "http.server.active_requests",
        [active],
        unit="{request}",
        description="Number of active HTTP server requests.",
    )


def _pool(meter: Meter, pool: Pool) -> None:
    def count(_: CallbackOptions) -> Iterable[Observation]:
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        yield Observation(idle, {**POOL, "db.client.connection.state": "idle"})
        yield Observation(size - idle, {**POOL, "db.client.connection.state": "used"})

    def maximum(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(pool.max_size, POOL)

    def pending(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(pool.get_stats().get("requests_waiting", 0), POOL)

    for name, callback, description in (
        ("db.client.connection.count", count, "Connections by state."),
        ("db.client.connection.max", maximum, "The most connections the pool opens."),
        (
            "db.client.connection.pending_requests",
            pending,
            "Requests waiting for a connection.",
        ),
    ):
        meter.create_observable_up_down_counter(
            name, [callback], unit="{connection}", description=description
        )


def _actors(meter: Meter, parts: Observed) -> None:
    supervisor = parts.supervisor

    def depth(_: CallbackOptions) -> Iterable[Observation]:
        for status in supervisor.statuses():
            yield Observation(status.mailbox_depth, {"actor": status.name})

    def restarts(_: CallbackOptions) -> Iterable[Observation]:
        for status in supervisor.statuses():
            yield Observation(status.restarts, {"actor": status.name})

    def escalations(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(supervisor.escalations, {"supervisor": supervisor.name})

    meter.create_observable_gauge(
        "sevenp.actor.mailbox.depth", [depth], unit="{message}", description="Mailbox depth."
    )
    meter.create_observable_counter(
        "sevenp.actor.restarts", [restarts], unit="{restart}", description="Actor restarts."
    )
    meter.create_observable_counter(
        "sevenp.supervisor.escalations",
        [escalations],
        unit="{escalation}",
        description="Times a supervisor gave up on a crash loop.",
    )
    _sessions(meter, parts.sessions)
    _cache(meter, parts.cache)
    _mail(meter, parts.mail)
    if parts.rate_limiter is not None:
        _rate_limits(meter, parts.rate_limiter)


def _sessions(meter: Meter, sessions: SessionActor) -> None:
    def held(_: CallbackOptions) -> Iterable[Observation]:
        details = sessions.details()
        yield Observation(_int(details.get("revoked")), {"kind": "revoked_session"})
        yield Observation(_int(details.get("users_invalidated")), {"kind": "invalidated_user"})
        yield Observation(_int(details.get("pending_last_seen")), {"kind": "pending_last_seen"})

    def applied(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(sessions.revocations_applied)

    meter.create_observable_gauge(
        "sevenp.sessions.held",
        [held],
        unit="{entry}",
        description="What the session actor holds in memory, by kind.",
    )
    meter.create_observable_counter(
        "sevenp.sessions.revocations.applied",
        [applied],
        unit="{revocation}",
        description="Revocations applied by this worker, from any instance.",
    )
    propagation = meter.create_histogram(
        "sevenp.sessions.revocation.propagation",
        unit="s",
        description="From a revocation's announcement on one instance to its arrival here"
        " (instance clocks assumed in step).",
        explicit_bucket_boundaries_advisory=[
            0.001,
            0.0025,
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1,
            2.5,
            5,
            10,
        ],
    )
    sessions.on_propagation = propagation.record


def _cache(meter: Meter, cache: CacheActor) -> None:
    def lookups(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(cache.local_hits, {"result": "hit", "tier": "local"})
        yield Observation(cache.redis_hits, {"result": "hit", "tier": "redis"})
        yield Observation(cache.misses, {"result": "miss", "tier": "none"})

    def invalidations(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(cache.invalidations_sent, {"direction": "sent"})
        yield Observation(cache.invalidations_received, {"direction": "received"})

    meter.create_observable_counter(
        "sevenp.cache.lookups", [lookups], unit="{lookup}", description="Cache lookups."
    )
    meter.create_observable_counter(
        "sevenp.cache.invalidations",
        [invalidations],
        unit="{invalidation}",
        description="Tag invalidations sent by this worker and received from others.",
    )


def _mail(meter: Meter, mail: MailActor) -> None:
    def outbox(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(_int(mail.details().get("pending")))

    def deliveries(_: CallbackOptions) -> Iterable[Observation]:
        details = mail.details()
        yield Observation(_int(details.get("sent")), {"outcome": "sent"})
        yield Observation(_int(details.get("failed")), {"outcome": "failed"})
        yield Observation(_int(details.get("gave_up")), {"outcome": "gave_up"})

    meter.create_observable_gauge(
        "sevenp.mail.outbox.depth",
        [outbox],
        unit="{mail}",
        description="Mails waiting in the outbox, as last counted.",
    )
    meter.create_observable_counter(
        "sevenp.mail.deliveries",
        [deliveries],
        unit="{attempt}",
        description="Delivery attempts by outcome (failed ones are retried until gave_up).",
    )


def _rate_limits(meter: Meter, limiter: RateLimitActor) -> None:
    def decisions(_: CallbackOptions) -> Iterable[Observation]:
        for outcome, count in limiter.decisions.items():
            yield Observation(count, {"outcome": outcome})

    meter.create_observable_counter(
        "sevenp.ratelimit.decisions",
        [decisions],
        unit="{decision}",
        description="Rate-limit decisions: allowed, limited, or degraded (on the local share).",
    )


def _process(meter: Meter) -> None:
    process = psutil.Process()

    def memory(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(process.memory_info().rss)

    def cpu(_: CallbackOptions) -> Iterable[Observation]:
        times = process.cpu_times()
        yield Observation(times.user, {"cpu.mode": "user"})
        yield Observation(times.system, {"cpu.mode": "system"})

    meter.create_observable_up_down_counter(
        "process.memory.usage", [memory], unit="By", description="Resident memory."
    )
    meter.create_observable_counter(
        "process.cpu.time", [cpu], unit="s", description="CPU time by mode."
    )
