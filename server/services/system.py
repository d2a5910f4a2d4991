"""What an operator asks of the system: the service registry and the cluster's instances."""

from __future__ import annotations

import os
import time

from actors.health import HealthActor
from actors.supervisor import Supervisor
from schemas.system import InstanceList, InstanceReport, ServiceList, ServiceStatus
from server.cluster import InstanceRegistry
from server.services.health_report import actor_reports


class SystemMonitor:
    def __init__(
        self,
        health: HealthActor,
        supervisor: Supervisor,
        registry: InstanceRegistry,
        *,
        service_urls: dict[str, str],
        instance_id: str,
        started_at: float,
        version: str,
    ) -> None:
        self._health = health
        self._supervisor = supervisor
        self._service_urls = service_urls
        self._instance_id = instance_id
        self._started_at = started_at
        self._version = version
        self._registry = registry

    def services(self) -> ServiceList:
        """Each downstream service's last probe, from the health actor's cache."""
        return ServiceList(
            items=[
                ServiceStatus(
                    name=check.name,
                    url=self._service_urls.get(check.name, ""),
                    status=check.status,  # type: ignore[arg-type]
                    response_time_ms=check.response_time_ms,
                    last_checked_at=check.checked_at,
                    error=check.error,
                )
                for check in self._health.services()
            ]
        )

    def this_instance(self) -> InstanceReport:
        """This instance's heartbeat: its identity, readiness and its actors' states."""
        return InstanceReport(
            instance_id=self._instance_id,
            pid=os.getpid(),
            version=self._version,
            started_at=self._started_at,
            last_beat_at=time.time(),
            ready=self._health.ready,
            draining=self._health.draining,
            actors=actor_reports(self._supervisor),
        )

    async def instances(self) -> InstanceList:
        """Every live instance of the cluster, from the heartbeats in Redis."""
        return InstanceList(items=await self._registry.live(), current=self._instance_id)
