"""Liveness, readiness and per-check health, all read from the health actor's cache."""

from __future__ import annotations

import time

from litestar import Controller, Response, get
from litestar.datastructures import State

from schemas.health import ActorReport, CheckReport, HealthReport, Liveness
from server.runtime import Runtime


def _report(runtime: Runtime) -> HealthReport:
    health = runtime.health
    checks = [
        CheckReport(
            name=c.name,
            status=c.status,  # type: ignore[arg-type]
            required=c.required,
            response_time_ms=c.response_time_ms,
            checked_at=c.checked_at,
            error=c.error,
        )
        for c in health.checks()
    ]
    actors = [
        ActorReport(
            name=s.name,
            state=str(s.state),
            restarts=s.restarts,
            mailbox_depth=s.mailbox_depth,
            last_error=s.last_error,
        )
        for s in runtime.supervisor.statuses()
    ]
    ready = health.ready
    if not ready:
        overall = "down"
    elif any(c.status != "up" for c in checks):
        overall = "degraded"
    else:
        overall = "up"
    return HealthReport(
        status=overall,  # type: ignore[arg-type]
        ready=ready,
        draining=health.draining,
        instance_id=runtime.instance_id,
        uptime_seconds=round(time.time() - runtime.started_at, 3),
        checks=checks,
        actors=actors,
    )


class ProbeController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", opt={"public": True, "rate_limit": False})
    async def live(self) -> Liveness:
        """Liveness probe.

        200 while the process runs; never touches a dependency.
        """
        return Liveness()

    @get("/ready", opt={"public": True, "rate_limit": False})
    async def ready(self, state: State) -> Response[HealthReport]:
        """Readiness probe.

        200 when every required dependency is up, 503 while one is down or the
        server is draining; read from the health actor's cached probes.
        """
        report = _report(state.runtime)
        return Response(report, status_code=200 if report.ready else 503)


class HealthController(Controller):
    path = "/api/health"
    tags = ["health"]

    @get("/", opt={"public": True, "rate_limit": False})
    async def health(self, state: State) -> Response[HealthReport]:
        """Health of every check.

        The status and response time of each dependency, from the cached probes.
        """
        report = _report(state.runtime)
        return Response(report, status_code=200 if report.ready else 503)
