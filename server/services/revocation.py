"""Ending sessions: recorded in the caller's unit of work, applied by the session actor.

Once the unit commits, the actor applies the change locally (the next request on this
instance sees it) and publishes it to the other instances. `tokens_valid_after` is taken
from this process's clock, the clock access tokens' `iat` comes from, so a token issued a
millisecond after the change is accepted and one issued before is not.
"""

from __future__ import annotations

import time

import msgspec

from server.db.queries import sessions
from server.db.unit import UnitOfWork
from server.services.ports import RevocationAnnouncer


class _Ended(msgspec.Struct):
    valid_after: float | None
    session_ids: list[str]


class Revocations:
    def __init__(self, announcer: RevocationAnnouncer) -> None:
        self._announcer = announcer

    async def end_session(self, uow: UnitOfWork, session_id: str) -> str | None:
        """End one session; return its user's id, or None if it was not live."""
        user_id = await uow.value(sessions.END_ONE, {"id": session_id})
        if user_id is None:
            return None

        async def announce() -> None:
            await self._announcer.session_revoked(session_id=session_id, user_id=user_id)

        uow.after_commit(announce)
        return str(user_id)

    async def end_all_sessions(
        self, uow: UnitOfWork, user_id: str, *, keep_session: str | None = None
    ) -> None:
        """End every session of the user (but `keep_session`) and every token issued before now."""
        # The app's clock, not the database's: the tokens it orders against carry the app's time.
        ended = await uow.one(
            sessions.END_ALL_OF_USER,
            {"user": user_id, "keep": keep_session, "now": time.time()},
            _Ended,
        )
        if ended is None or ended.valid_after is None:
            return
        valid_after, session_ids = ended.valid_after, ended.session_ids

        async def announce() -> None:
            await self._announcer.user_sessions_revoked(
                user_id=user_id, valid_after=valid_after, session_ids=session_ids
            )

        uow.after_commit(announce)
