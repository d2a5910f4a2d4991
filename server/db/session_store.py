"""The session actor's store on PostgreSQL: standings, recent revocations, lastSeen."""

from __future__ import annotations

import uuid

from actors.session import Cutoff, Cutoffs, Standing
from server.db.queries import sessions as q
from server.db.unit import Database


class PostgresSessionStore:
    """Implements `actors.session.SessionStore`; each call runs autocommitted statements."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def standing(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Standing | None:
        async with self._database.unit(autocommit=True) as uow:
            return await uow.one(q.STANDING, {"session": session_id, "user": user_id}, Standing)

    async def cutoffs_since(self, since: float | None, within_seconds: float) -> Cutoffs:
        params = {"since": since, "seconds": within_seconds}
        async with self._database.unit(autocommit=True) as uow:
            as_of = await uow.value(q.DATABASE_TIME, None)
            sessions = await uow.all(q.REVOKED_SINCE, params, Cutoff)
            users = await uow.all(q.USERS_INVALIDATED_SINCE, params, Cutoff)
        return Cutoffs(sessions=sessions, users=users, as_of=float(as_of))

    async def write_last_seen(self, session_ids: list[uuid.UUID], seen_at: list[float]) -> None:
        async with self._database.unit(autocommit=True) as uow:
            await uow.execute(q.WRITE_LAST_SEEN, {"ids": session_ids, "stamps": seen_at})
