"""Purges of the retention actor: each deletes one batch of rows that ended beyond the horizon.

A batch is `DELETE ... WHERE ctid = ANY(ARRAY(SELECT ctid ... LIMIT n FOR UPDATE SKIP LOCKED))`:
a bounded number of rows, found by index, never waiting for a row someone else holds.
`%(horizon)s` is the horizon in seconds. Purges run in this order, so that deleting a
session cascades to no more than a few refresh tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.db.statement import Statement


@dataclass(frozen=True, slots=True)
class Purge:
    statement: Statement
    table: str
    """The table the purge deletes from; a purge whose table does not exist is skipped."""

    @property
    def name(self) -> str:
        return self.statement.name


_ENDED_SESSIONS = (
    "SELECT id FROM sessions"
    " WHERE revoked_at < now() - make_interval(secs => %(horizon)s)"
    " OR expires_at < now() - make_interval(secs => %(horizon)s)"
)

# Rotated refresh tokens of a live session stay: presenting one ends the session (reuse).
REFRESH_TOKENS = Purge(
    Statement(
        "retention.refresh_tokens",
        "DELETE FROM refresh_tokens WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM refresh_tokens WHERE session_id IN (" + _ENDED_SESSIONS + ")"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "refresh_tokens",
)

SESSIONS = Purge(
    Statement(
        "retention.sessions",
        "DELETE FROM sessions WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM sessions"
        "   WHERE revoked_at < now() - make_interval(secs => %(horizon)s)"
        "   OR expires_at < now() - make_interval(secs => %(horizon)s)"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "sessions",
)

ONE_TIME_TOKENS = Purge(
    Statement(
        "retention.one_time_tokens",
        "DELETE FROM one_time_tokens WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM one_time_tokens"
        "   WHERE used_at < now() - make_interval(secs => %(horizon)s)"
        "   OR expires_at < now() - make_interval(secs => %(horizon)s)"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "one_time_tokens",
)

SENT_MAIL = Purge(
    Statement(
        "retention.sent_mail",
        "DELETE FROM mail_outbox WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM mail_outbox"
        "   WHERE sent_at < now() - make_interval(secs => %(horizon)s)"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "mail_outbox",
)

# Mail given up on is kept three horizons, for whoever looks into why it never left.
GIVEN_UP_MAIL = Purge(
    Statement(
        "retention.given_up_mail",
        "DELETE FROM mail_outbox WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM mail_outbox"
        "   WHERE sent_at IS NULL AND next_attempt_at = 'infinity'::timestamptz"
        "   AND created_at < now() - 3 * make_interval(secs => %(horizon)s)"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "mail_outbox",
)

# An expired key answers nothing any more, so it goes without waiting for the horizon.
IDEMPOTENCY_KEYS = Purge(
    Statement(
        "retention.idempotency_keys",
        "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
        "   SELECT ctid FROM idempotency_keys WHERE expires_at < now()"
        "   LIMIT %(limit)s FOR UPDATE SKIP LOCKED))",
    ),
    "idempotency_keys",
)

PURGES: tuple[Purge, ...] = (
    REFRESH_TOKENS,
    SESSIONS,
    ONE_TIME_TOKENS,
    SENT_MAIL,
    GIVEN_UP_MAIL,
    IDEMPOTENCY_KEYS,
)

TABLE_EXISTS = Statement(
    "retention.table_exists", "SELECT to_regclass(%(table)s) IS NOT NULL", prepare=True
)
