"""The audit log on PostgreSQL: the audit actor's batched sink, and partition maintenance."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from actors.audit import AuditRecord
from server.db.queries import audit as q
from server.db.unit import Database

_encoder = msgspec.json.Encoder()


class PostgresAuditSink:
    """Implements `actors.audit.AuditSink`: one autocommitted INSERT per batch."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        params = {
            "occurred_at": [r.occurred_at for r in records],
            "actor_id": [r.actor_id for r in records],
            "action": [r.action for r in records],
            "target_type": [r.target_type for r in records],
            "target_id": [r.target_id for r in records],
            "address": [r.address for r in records],
            "outcome": [r.outcome for r in records],
            "details": [_encoder.encode(r.details).decode() for r in records],
        }
        async with self._database.unit(autocommit=True) as uow:
            await uow.execute(q.RECORD_BATCH, params)


class AuditPartitions:
    """Keeps the monthly partitions: made `months_ahead` ahead, dropped past the horizon."""

    def __init__(self, database: Database, *, retention_days: int, months_ahead: int = 2) -> None:
        self._database = database
        self._retention_days = retention_days
        self._months_ahead = months_ahead

    async def maintain(self) -> int:
        """Create the coming months' partitions; drop expired ones; the number dropped."""
        params = {"months_ahead": self._months_ahead, "retention_days": self._retention_days}
        async with self._database.unit() as uow:
            return int(await uow.value(q.MAINTAIN, params) or 0)
