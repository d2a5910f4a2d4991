"""System bodies: the service registry, the cluster's live instances and the route table."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.health import ActorReport, CheckState


class ServiceStatus(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    url: str
    status: CheckState
    response_time_ms: float | None
    last_checked_at: float | None
    """Unix time of the last probe; null before the first."""
    error: str | None = None


class ServiceList(msgspec.Struct, kw_only=True, rename="camel"):
    items: list[ServiceStatus]


class InstanceReport(msgspec.Struct, kw_only=True, rename="camel"):
    instance_id: str
    pid: int
    version: str
    started_at: float
    last_beat_at: float
    ready: bool
    draining: bool
    actors: list[ActorReport]


class InstanceList(msgspec.Struct, kw_only=True, rename="camel"):
    items: list[InstanceReport]
    current: str
    """The id of the instance that answered."""


AccessKind = Literal["public", "auth", "permission", "min_role", "roles", "none"]


class RouteGuard(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    access: AccessKind
    permission: str | None = None
    min_role: str | None = None
    roles: list[str] | None = None
    rate_limit: str | None = None
    """The route's own rate-limit policy, `off` when exempt, absent for the default ones."""


class RouteInfo(msgspec.Struct, kw_only=True, rename="camel"):
    path: str
    methods: list[str]
    handler: str
    guard: RouteGuard


class RouteList(msgspec.Struct, kw_only=True, rename="camel"):
    items: list[RouteInfo]
