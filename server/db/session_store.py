"""The session actor's store on PostgreSQL: standings, recent revocations, lastSeen."""

from __future__ import annotations

import uuid

from actors.session import Cutoff, Standing
from server.db.queries import sessions as q
from server.db.unit import Database


class PostgresSessionStore:
    """Implements `actors.session.SessionStore`; each call runs autocommitted statements."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def standing(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Standing | None:
        async with self._database.unit(autocommit=True) as uow:
            return await uow.one(q.STANDING, {"session": session_id, "user": user_id}, Standing)

    async def recent_cutoffs(self, within_seconds: float) -> tuple[list[Cutoff], list[Cutoff]]:
        params = {"seconds": within_seconds}
        async with self._database.unit(autocommit=True) as uow:
            sessions = await uow.all(q.REVOKED_WITHIN, params, Cutoff)
            users = await uow.all(q.USERS_INVALIDATED_WITHIN, params, Cutoff)
        return sessions, users

    async def write_last_seen(self, session_ids: list[uuid.UUID], seen_at: list[float]) -> None:
        async with self._database.unit(autocommit=True) as uow:
            await uow.execute(q.WRITE_LAST_SEEN, {"ids": session_ids, "stamps": seen_at})
