"""The retention actor's store on PostgreSQL: the purges of `queries/retention.py`."""

from __future__ import annotations

from collections.abc import Sequence

from server.db.queries.retention import PURGES, TABLE_EXISTS, Purge
from server.db.unit import Database


class PostgresRetention:
    """Implements `actors.retention.RetentionStore`; each batch is one autocommitted statement."""

    def __init__(self, database: Database, purges: Sequence[Purge] = PURGES) -> None:
        self._database = database
        self._purges = {purge.name: purge for purge in purges}

    def purges(self) -> Sequence[str]:
        return list(self._purges)

    async def purge(self, name: str, *, horizon_seconds: float, limit: int) -> int | None:
        purge = self._purges[name]
        async with self._database.unit(autocommit=True) as uow:
            if not await uow.value(TABLE_EXISTS, {"table": purge.table}):
                return None
            return await uow.execute(purge.statement, {"horizon": horizon_seconds, "limit": limit})
