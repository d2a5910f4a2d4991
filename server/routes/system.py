"""`/api/system`: the audit log, the route table, the service registry and the cluster."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas.audit import AuditPage
from schemas.base import MAX_PAGE_SIZE
from schemas.system import InstanceList, RouteList, ServiceList
from server.db.unit import UnitOfWork
from server.http.route_table import route_table
from server.security.permissions import Permission
from server.services.audit import AuditLog
from server.services.system import SystemMonitor

_MONITOR = {"permission": Permission.SYSTEM_MONITOR}
_ACTION = r"^[a-z_]+(\.[a-z_]+)+$"


class SystemController(Controller):
    path = "/api/system"
    tags = ["system"]

    @get("/audit", opt=_MONITOR)
    async def audit(
        self,
        audit_log: NamedDependency[AuditLog],
        uow: NamedDependency[UnitOfWork],
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
        actor_id: Annotated[uuid.UUID | None, QueryParameter(name="actorId")] = None,
        action: Annotated[str | None, QueryParameter(max_length=64, pattern=_ACTION)] = None,
        since: Annotated[datetime.datetime | None, QueryParameter()] = None,
    ) -> AuditPage:
        """The audit log, newest first (admin).

        Filters `actorId` (who acted), `action` (such as `auth.login`) and `since` (an ISO 8601
        time); `limit` is capped at 100.
        """
        return await audit_log.page(
            uow,
            page=page,
            limit=min(limit, MAX_PAGE_SIZE),
            actor_id=str(actor_id) if actor_id else None,
            action=action,
            since=since,
        )

    @get("/routes", opt=_MONITOR)
    async def routes(self, request: Request[Any, Any, Any]) -> RouteList:
        """Every registered route with its methods and guard (admin).

        The guard is the route's access rule: `public`, `auth`, a `permission`, a `minRole` or
        exact `roles`, and its own rate-limit policy when it has one.
        """
        return RouteList(items=route_table(request.app))

    @get("/services", opt=_MONITOR)
    async def services(self, system: NamedDependency[SystemMonitor]) -> ServiceList:
        """The service registry (admin).

        Each downstream service of `SERVICES`: its status, response time and last check, from
        the health actor's probes.
        """
        return system.services()

    @get("/instances", opt=_MONITOR)
    async def instances(self, system: NamedDependency[SystemMonitor]) -> InstanceList:
        """Every live instance of the cluster with its actors' state (admin).

        From the instances' heartbeats in Redis, which expire when an instance stops beating.
        """
        return await system.instances()
