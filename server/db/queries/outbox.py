"""Statements over `mail_outbox`: queue a mail in the caller's transaction, then claim and
settle it (the mail actor, one autocommitted statement at a time)."""

from __future__ import annotations

from server.db.statement import Statement

ENQUEUE = Statement(
    "outbox.enqueue",
    "INSERT INTO mail_outbox (recipient, subject, body, secret)"
    " VALUES (%(recipient)s, %(subject)s, %(body)s, %(secret)s) RETURNING id",
)

CLAIM = Statement(
    "outbox.claim",
    "UPDATE mail_outbox AS m"
    " SET next_attempt_at = now() + make_interval(secs => %(lease_seconds)s)"
    " FROM (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= now()"
    "   ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS due"
    " WHERE m.id = due.id"
    " RETURNING m.id, m.recipient, m.subject, m.body, m.secret, m.attempts,"
    " m.next_attempt_at AS leased_until",
)

MARK_SENT = Statement(
    "outbox.mark_sent",
    "UPDATE mail_outbox SET sent_at = now(), last_error = NULL, secret = NULL"
    " WHERE id = %(id)s AND sent_at IS NULL",
)

MARK_FAILED = Statement(
    "outbox.mark_failed",
    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = %(error)s,"
    " next_attempt_at = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'infinity'::timestamptz"
    "   ELSE now() + %(delay)s END,"
    " secret = CASE WHEN attempts + 1 >= %(max_attempts)s THEN NULL ELSE secret END"
    " WHERE id = %(id)s AND sent_at IS NULL AND next_attempt_at = %(leased_until)s"
    " RETURNING attempts,"
    " CASE WHEN isfinite(next_attempt_at) THEN next_attempt_at END AS next_attempt_at",
)

RELEASE = Statement(
    "outbox.release",
    "UPDATE mail_outbox AS m SET next_attempt_at = now()"
    " FROM unnest(%(ids)s::bigint[], %(leases)s::timestamptz[]) AS c(id, leased_until)"
    " WHERE m.id = c.id AND m.sent_at IS NULL AND m.next_attempt_at = c.leased_until",
)

COUNT_PENDING = Statement(
    "outbox.count_pending",
    "SELECT count(*) FROM mail_outbox"
    " WHERE sent_at IS NULL AND next_attempt_at < 'infinity'::timestamptz",
)
