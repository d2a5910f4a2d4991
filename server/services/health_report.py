"""The health report: the health actor's cached checks and the supervisor's actors.

`summary()` is what anyone may read (probes, `/api/health`): each check's status and
timing. `report()` adds the checks' error text, the actors and their last errors, which can
name hosts, statements and internals: for admins only.
"""

from __future__ import annotations

import time
from typing import Literal

from actors.health import HealthActor
from actors.supervisor import Supervisor
from schemas.health import ActorReport, CheckReport, CheckSummary, HealthReport, HealthSummary


def actor_reports(supervisor: Supervisor) -> list[ActorReport]:
    """Each supervised actor's state, restarts, mailbox depth and last error."""
    return [
        ActorReport(
            name=s.name,
            state=str(s.state),
            restarts=s.restarts,
            mailbox_depth=s.mailbox_depth,
            last_error=s.last_error,
        )
        for s in supervisor.statuses()
    ]


class HealthReporter:
    def __init__(
        self, health: HealthActor, supervisor: Supervisor, *, instance_id: str, started_at: float
    ) -> None:
        self._health = health
        self._supervisor = supervisor
        self._instance_id = instance_id
        self._started_at = started_at

    def report(self) -> HealthReport:
        checks = [
            CheckReport(
                name=c.name,
                status=c.status,  # type: ignore[arg-type]
                required=c.required,
                response_time_ms=c.response_time_ms,
                checked_at=c.checked_at,
                error=c.error,
            )
            for c in self._health.checks()
        ]
        actors = actor_reports(self._supervisor)
        ready = self._health.ready
        overall: Literal["up", "degraded", "down"]
        if not ready:
            overall = "down"
        elif any(c.status != "up" for c in checks):
            overall = "degraded"
        else:
            overall = "up"
        return HealthReport(
            status=overall,
            ready=ready,
            draining=self._health.draining,
            instance_id=self._instance_id,
            uptime_seconds=round(time.time() - self._started_at, 3),
            checks=checks,
            actors=actors,
        )

    def summary(self) -> HealthSummary:
        report = self.report()
        return HealthSummary(
            status=report.status,
            ready=report.ready,
            draining=report.draining,
            checks=[
                CheckSummary(
                    name=c.name,
                    status=c.status,
                    required=c.required,
                    response_time_ms=c.response_time_ms,
                )
                for c in report.checks
            ],
        )
