"""Liveness, readiness and per-check health, all read from the health actor's cache."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from schemas.health import HealthReport, Liveness
from server.services.health_report import HealthReporter


def _answer(report: HealthReport) -> Response[HealthReport]:
    return Response(report, status_code=200 if report.ready else 503)


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
    async def ready(self, health: NamedDependency[HealthReporter]) -> Response[HealthReport]:
        """Readiness probe.

        200 when every required dependency is up, 503 while one is down or the
        server is draining; read from the health actor's cached probes.
        """
        return _answer(health.report())


class HealthController(Controller):
    path = "/api/health"
    tags = ["health"]

    @get("/", opt={"public": True, "rate_limit": False})
    async def health(self, health: NamedDependency[HealthReporter]) -> Response[HealthReport]:
        """Health of every check.

        The status and response time of each dependency, from the cached probes.
        """
        return _answer(health.report())
