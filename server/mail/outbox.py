"""The mail outbox table: queue a mail inside the caller's transaction, then claim and settle it.

A row's life:

    enqueue_mail ──> due (next_attempt_at <= now(), sent_at NULL)
      claim_due_mail ──> leased (next_attempt_at = now() + lease)
        mark_sent   ──> sent (sent_at set)
        mark_failed ──> due again after the backoff, or, at max_attempts,
                        given up (next_attempt_at = 'infinity', sent_at NULL)
        release     ──> due again now, attempts unchanged (claimed, never tried)

A crashed sender's lease simply runs out and another claim picks the row up,
so delivery is at least once; no row is claimed by two senders at a time.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import psycopg

from server.mail.senders import MailMessage

FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
DEFAULT_MAX_ATTEMPTS = 8
_MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A claimed row: the message, its id, the attempts made before this one, the lease end."""

    id: int
    message: MailMessage
    attempts: int
    leased_until: datetime.datetime


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """What mark_failed decided: attempts so far, and when to retry (None: given up)."""

    attempts: int
    next_attempt_at: datetime.datetime | None

    @property
    def gave_up(self) -> bool:
        return self.next_attempt_at is None


def retry_delay(failed_attempts: int) -> datetime.timedelta:
    """Wait after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min, ... capped at 1 h."""
    if failed_attempts < 1:
        raise ValueError(f"failed_attempts must be at least 1, got {failed_attempts}")
    exponent = min(failed_attempts - 1, 32)  # 30 s * 2**32 is far past the cap already
    return datetime.timedelta(seconds=min(FIRST_RETRY_SECONDS * 2**exponent, MAX_RETRY_SECONDS))


async def enqueue_mail(conn: psycopg.AsyncConnection[Any], message: MailMessage) -> int:
    """Queue `message` on the caller's connection, inside its transaction; return the row id.

    If the caller's transaction rolls back, the mail is never sent.
    """
    cursor = await conn.execute(
        "INSERT INTO mail_outbox (recipient, subject, body) VALUES (%s, %s, %s) RETURNING id",
        (message.recipient, message.subject, message.body),
    )
    row = await cursor.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT INTO mail_outbox returned no row")
    mail_id: int = row[0]
    return mail_id


_CLAIM = """
UPDATE mail_outbox AS m
SET next_attempt_at = now() + make_interval(secs => %(lease_seconds)s)
FROM (
    SELECT id FROM mail_outbox
    WHERE sent_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS due
WHERE m.id = due.id
RETURNING m.id, m.recipient, m.subject, m.body, m.attempts, m.next_attempt_at
"""


async def claim_due_mail(
    conn: psycopg.AsyncConnection[Any], *, limit: int, lease_seconds: float
) -> list[OutboxMail]:
    """Lease up to `limit` due rows for `lease_seconds`, oldest first, in one statement.

    Rows another claim has locked are skipped, and a leased row is not due, so
    concurrent claimers never get the same row. Run on an autocommit connection,
    the row locks last for this one statement only.
    """
    cursor = await conn.execute(_CLAIM, {"limit": limit, "lease_seconds": lease_seconds})
    rows = await cursor.fetchall()
    claimed = [
        OutboxMail(
            id=row[0],
            message=MailMessage(recipient=row[1], subject=row[2], body=row[3]),
            attempts=row[4],
            leased_until=row[5],
        )
        for row in rows
    ]
    claimed.sort(key=lambda mail: mail.id)
    return claimed


async def mark_sent(conn: psycopg.AsyncConnection[Any], mail_id: int) -> None:
    await conn.execute(
        "UPDATE mail_outbox SET sent_at = now(), last_error = NULL"
        " WHERE id = %s AND sent_at IS NULL",
        (mail_id,),
    )


async def mark_failed(
    conn: psycopg.AsyncConnection[Any],
    mail: OutboxMail,
    *,
    error: str,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> FailureOutcome | None:
    """Count a failed attempt and schedule the retry by `retry_delay`, or give up at max_attempts.

    None means the row is no longer ours to settle: its lease ran out and another
    claimer took it, or it was sent meanwhile. A row given up keeps sent_at NULL
    and gets next_attempt_at 'infinity', so it is never due again and stays in
    the table, with its last_error, for a human.
    """
    attempts = mail.attempts + 1
    cursor = await conn.execute(
        """
        UPDATE mail_outbox
        SET attempts = attempts + 1,
            last_error = %(error)s,
            next_attempt_at = CASE
                WHEN attempts + 1 >= %(max_attempts)s THEN 'infinity'::timestamptz
                ELSE now() + %(delay)s
            END
        WHERE id = %(id)s AND sent_at IS NULL AND next_attempt_at = %(leased_until)s
        RETURNING attempts, CASE WHEN isfinite(next_attempt_at) THEN next_attempt_at END
        """,
        {
            "id": mail.id,
            "leased_until": mail.leased_until,
            "error": error[:_MAX_ERROR_CHARS],
            "max_attempts": max_attempts,
            "delay": retry_delay(attempts),
        },
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return FailureOutcome(attempts=row[0], next_attempt_at=row[1])


async def release(conn: psycopg.AsyncConnection[Any], mails: list[OutboxMail]) -> None:
    """Hand back claimed rows never tried: due again at once, attempts unchanged.

    Only rows still under this claim's lease are touched (a row whose lease ran
    out may already belong to another claimer).
    """
    if not mails:
        return
    await conn.execute(
        """
        UPDATE mail_outbox AS m
        SET next_attempt_at = now()
        FROM unnest(%(ids)s::bigint[], %(leases)s::timestamptz[]) AS c(id, leased_until)
        WHERE m.id = c.id AND m.sent_at IS NULL AND m.next_attempt_at = c.leased_until
        """,
        {"ids": [m.id for m in mails], "leases": [m.leased_until for m in mails]},
    )


async def count_pending(conn: psycopg.AsyncConnection[Any]) -> int:
    """Rows not yet sent and not given up: due, leased or waiting for a retry."""
    cursor = await conn.execute(
        "SELECT count(*) FROM mail_outbox"
        " WHERE sent_at IS NULL AND next_attempt_at < 'infinity'::timestamptz"
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
