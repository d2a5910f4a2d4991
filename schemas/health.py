"""Health report bodies: a terse public summary, and the full report for admins."""

from __future__ import annotations

from typing import Literal

import msgspec

CheckState = Literal["up", "down", "degraded", "unknown"]


class CheckReport(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    status: CheckState
    required: bool
    response_time_ms: float | None
    checked_at: float | None
    error: str | None = None


class ActorReport(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    state: str
    restarts: int
    mailbox_depth: int
    last_error: str | None


class HealthReport(msgspec.Struct, kw_only=True, rename="camel"):
    status: CheckState
    ready: bool
    draining: bool
    instance_id: str
    uptime_seconds: float
    checks: list[CheckReport]
    actors: list[ActorReport]


class Liveness(msgspec.Struct, kw_only=True):
    status: Literal["ok"] = "ok"


class CheckSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """A check as anyone may see it: no error text."""

    name: str
    status: CheckState
    required: bool
    response_time_ms: float | None


class HealthSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """The public health body: each check's status, nothing about actors or errors."""

    status: CheckState
    ready: bool
    draining: bool
    checks: list[CheckSummary]
