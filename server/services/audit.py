"""The audit log: sensitive changes recorded in their own transaction, and reading the log.

A change and its audit row commit together: a service calls `record(uow, ...)` in the unit
of work that makes the change, so a rolled-back change leaves no row and no instance can die
between the two. Events with no transaction of their own (a failed login, a refused
authorisation) go to the audit actor instead (`AuditQueue`), which writes them in batches.
`details` is a small JSON object of what a reader needs (from and to, a reason); never a
password, token or hash.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Protocol

import msgspec

from actors.audit import AuditRecord, Outcome
from schemas.audit import AuditEntry, AuditPage
from server.db.queries import audit as q
from server.db.unit import UnitOfWork

_encoder = msgspec.json.Encoder()


class AuditQueue(Protocol):
    """Takes an event with no transaction of its own; never blocks, never raises."""

    def submit(self, record: AuditRecord) -> bool: ...


async def record(
    uow: UnitOfWork,
    *,
    action: str,
    actor_id: str | None,
    address: str | None,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: Outcome = "success",
    details: Mapping[str, object] | None = None,
) -> None:
    """Append an audit row in the unit's transaction: it commits or rolls back with it."""
    await uow.execute(
        q.RECORD,
        {
            "actor_id": actor_id,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "address": address,
            "outcome": outcome,
            "details": _encoder.encode(details or {}).decode(),
        },
    )


class AuditLog:
    """Reads the audit log for admins."""

    async def page(
        self,
        uow: UnitOfWork,
        *,
        page: int,
        limit: int,
        actor_id: str | None,
        action: str | None,
        since: datetime.datetime | None,
    ) -> AuditPage:
        params = {
            "actor_id": actor_id,
            "action": action,
            "since": since,
            "limit": limit,
            "offset": (page - 1) * limit,
        }
        items = await uow.all(q.PAGE, params, AuditEntry)
        total = await uow.value(q.COUNT, params)
        return AuditPage(items=items, page=page, limit=limit, total=int(total or 0))
