"""Health report bodies."""

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
