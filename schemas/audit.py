"""Audit log bodies: one event as `GET /api/system/audit` lists it, and a page of them."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec


class AuditEntry(msgspec.Struct, kw_only=True, rename="camel"):
    id: int
    occurred_at: datetime.datetime
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    client_address: str | None
    outcome: str
    details: dict[str, Any]


class AuditPage(msgspec.Struct, kw_only=True, rename="camel"):
    items: list[AuditEntry]
    page: int
    limit: int
    total: int
