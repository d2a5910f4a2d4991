"""Ending sessions: recorded in PostgreSQL first, then applied by the session actor.

The actor applies a change locally at once (the next request on this instance
sees it) and publishes it to the other instances. `tokens_valid_after` is taken
from this process's clock, the clock access tokens' `iat` comes from, so a token
issued a millisecond after the change is accepted and one issued before is not.
"""

from __future__ import annotations

import time
from typing import Any

from actors.session import SessionActor
from server.db.pool import Pool

_END_ALL = (
    "WITH u AS (UPDATE users SET tokens_valid_after = to_timestamp(%(now)s) WHERE id = %(user)s"
    "   RETURNING extract(epoch FROM tokens_valid_after)::float8 AS valid_after),"
    " s AS (UPDATE sessions SET revoked_at = now() WHERE user_id = %(user)s"
    "   AND revoked_at IS NULL AND id IS DISTINCT FROM %(keep)s RETURNING id::text)"
    " SELECT (SELECT valid_after FROM u), coalesce((SELECT array_agg(id) FROM s), '{}')"
)


class Revocations:
    def __init__(self, pool: Pool, sessions: SessionActor) -> None:
        self._pool = pool
        self._sessions = sessions

    async def end_session(self, session_id: str) -> str | None:
        """End one session; return its user's id, or None if it was not live."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"
                " RETURNING user_id::text",
                (session_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        await self._sessions.session_revoked(session_id=session_id, user_id=row[0])
        return str(row[0])

    async def end_all_sessions(self, user_id: str, *, keep_session: str | None = None) -> None:
        """End every session of the user (but `keep_session`) and every token issued before now."""
        async with self._pool.connection() as conn:
            valid_after, session_ids = await self._end_all(conn, user_id, keep_session)
        await self.announce(user_id, valid_after, session_ids)

    @staticmethod
    async def _end_all(
        conn: Any, user_id: str, keep_session: str | None
    ) -> tuple[float, list[str]]:
        # The app's clock, not the database's: the tokens it orders against carry the app's time.
        now = time.time()
        cur = await conn.execute(_END_ALL, {"user": user_id, "keep": keep_session, "now": now})
        row = await cur.fetchone()
        if row is None or row[0] is None:
            return 0.0, []
        return float(row[0]), list(row[1])

    async def end_all_in(
        self, conn: Any, user_id: str, *, keep_session: str | None = None
    ) -> tuple[float, list[str]]:
        """Inside the caller's transaction; pass the result to `announce` after commit."""
        return await self._end_all(conn, user_id, keep_session)

    async def announce(self, user_id: str, valid_after: float, session_ids: list[str]) -> None:
        if valid_after:
            await self._sessions.user_sessions_revoked(
                user_id=user_id, valid_after=valid_after, session_ids=session_ids
            )
