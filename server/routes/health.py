"""Liveness, readiness and per-check health, all read from the health actor's cache.

Anyone gets the terse summary; the full report, with error text and actors, is for admins.
"""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from schemas.health import HealthReport, HealthSummary, Liveness
from schemas.users import Role
from server.services.health_report import HealthReporter


def _answer(summary: HealthSummary) -> Response[HealthSummary]:
    return Response(summary, status_code=200 if summary.ready else 503)


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
    async def ready(self, health: NamedDependency[HealthReporter]) -> Response[HealthSummary]:
        """Readiness probe.

        200 when every required dependency is up, 503 while one is down or the
        server is draining; read from the health actor's cached probes.
        """
        return _answer(health.summary())


class HealthController(Controller):
    path = "/api/health"
    tags = ["health"]

    @get("/", opt={"public": True, "rate_limit": False})
    async def health(self, health: NamedDependency[HealthReporter]) -> Response[HealthSummary]:
        """Health of every check.

        The status and response time of each dependency, from the cached probes; 503 while
        not ready. Error text and actors are in `GET /api/system/health` (admin).
        """
        return _answer(health.summary())


class SystemHealthController(Controller):
    path = "/api/system/health"
    tags = ["system"]

    @get("/", opt={"min_role": Role.ADMIN})
    async def system_health(self, health: NamedDependency[HealthReporter]) -> HealthReport:
        """Full health report (admin).

        Every check with its last error, this instance's id and uptime, and each supervised
        actor's state, restarts, mailbox depth and last error. Always 200: readiness is
        the `ready` field here and the status of `/health/ready`.
        """
        return health.report()
