"""Statements over `sessions` and `refresh_tokens`: opening, listing and ending sessions,
and what the session actor reads (standings, recent revocations) and writes behind (lastSeen)."""

from __future__ import annotations

from server.db.statement import Statement

OPEN = Statement(
    "sessions.open",
    "WITH s AS (INSERT INTO sessions (user_id, expires_at, remember_me, user_agent, ip)"
    "   VALUES (%(user)s, now() + %(ttl)s * interval '1 second', %(remember)s, %(ua)s, %(ip)s)"
    "   RETURNING id),"
    " r AS (INSERT INTO refresh_tokens (token_hash, session_id)"
    "   SELECT %(refresh)s, id FROM s)"
    " SELECT id::text FROM s",
)

LIVE_OF_USER = Statement(
    "sessions.live_of_user",
    "SELECT id::text AS id, created_at, last_seen_at, user_agent, ip,"
    " id = %(current)s::uuid AS current"
    " FROM sessions WHERE user_id = %(user)s"
    " AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC",
)

OWNER_OF_LIVE = Statement(
    "sessions.owner_of_live",
    "SELECT user_id::text FROM sessions WHERE id = %(id)s AND revoked_at IS NULL",
)

END_ONE = Statement(
    "sessions.end_one",
    "UPDATE sessions SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL"
    " RETURNING user_id::text",
)

END_ALL_OF_USER = Statement(
    "sessions.end_all_of_user",
    "WITH u AS (UPDATE users SET tokens_valid_after = to_timestamp(%(now)s) WHERE id = %(user)s"
    "   RETURNING extract(epoch FROM tokens_valid_after)::float8 AS valid_after),"
    " s AS (UPDATE sessions SET revoked_at = now() WHERE user_id = %(user)s"
    "   AND revoked_at IS NULL AND id IS DISTINCT FROM %(keep)s RETURNING id::text)"
    " SELECT (SELECT valid_after FROM u) AS valid_after,"
    " coalesce((SELECT array_agg(id) FROM s), '{}') AS session_ids",
)

REFRESH_LOOKUP = Statement(
    "sessions.refresh_lookup",
    "SELECT rt.session_id::text AS session_id, rt.rotated_at IS NOT NULL AS rotated,"
    " s.user_id::text AS user_id, s.revoked_at IS NULL AND s.expires_at > now() AS live,"
    " u.role, u.is_active"
    " FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id"
    " JOIN users u ON u.id = s.user_id WHERE rt.token_hash = %(hash)s FOR UPDATE OF rt",
)

ROTATE_REFRESH = Statement(
    "sessions.rotate_refresh",
    "WITH old AS (UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = %(old)s)"
    " INSERT INTO refresh_tokens (token_hash, session_id) VALUES (%(new)s, %(session)s)",
)

STANDING = Statement(
    "sessions.standing",
    "SELECT coalesce(s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active, false)"
    " AS live, CASE WHEN isfinite(u.tokens_valid_after)"
    "   THEN extract(epoch FROM u.tokens_valid_after)::float8 END AS valid_after"
    " FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.id = %(session)s AND s.user_id = %(user)s",
)

DATABASE_TIME = Statement(
    "sessions.database_time", "SELECT extract(epoch FROM statement_timestamp())::float8"
)

REVOKED_SINCE = Statement(
    "sessions.revoked_since",
    "SELECT id::text AS id, extract(epoch FROM revoked_at)::float8 AS at FROM sessions"
    " WHERE revoked_at > greatest(to_timestamp(%(since)s::float8),"
    "   now() - make_interval(secs => %(seconds)s))",
)

USERS_INVALIDATED_SINCE = Statement(
    "sessions.users_invalidated_since",
    "SELECT id::text AS id, extract(epoch FROM tokens_valid_after)::float8 AS at FROM users"
    " WHERE tokens_valid_after > '-infinity' AND tokens_valid_after > greatest("
    "   to_timestamp(%(since)s::float8), now() - make_interval(secs => %(seconds)s))",
)

WRITE_LAST_SEEN = Statement(
    "sessions.write_last_seen",
    "WITH seen AS (SELECT s.id, v.ts"
    "   FROM sessions s JOIN unnest(%(ids)s::uuid[], %(stamps)s::float8[]) AS v(id, ts)"
    "   ON s.id = v.id WHERE s.last_seen_at < to_timestamp(v.ts)"
    "   ORDER BY s.id FOR UPDATE OF s SKIP LOCKED)"
    " UPDATE sessions s SET last_seen_at = to_timestamp(seen.ts) FROM seen WHERE s.id = seen.id",
)
