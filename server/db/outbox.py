"""The mail outbox on PostgreSQL: queue a mail inside the caller's unit, then claim and settle it.

A row's life:

    enqueue ──> due (next_attempt_at <= now(), sent_at NULL)
      claim ──> leased (next_attempt_at = now() + lease)
        mark_sent   ──> sent (sent_at set)
        mark_failed ──> due again after the backoff, or, at max_attempts,
                        given up (next_attempt_at = 'infinity', sent_at NULL)
        release     ──> due again now, attempts unchanged (claimed, never tried)

A crashed sender's lease simply runs out and another claim picks the row up,
so delivery is at least once; no row is claimed by two senders at a time.

Secrets: a mail carrying a one-time token is queued with `SECRET_PLACEHOLDER` in its body
and the token in the row's `secret` column; the claim renders the body, and the statement
that marks the row sent (or given up) clears `secret`. So the raw token is stored only
while its mail is pending, and a resend after a crash still has it. The body kept after
sending holds the placeholder, never the token.
"""

from __future__ import annotations

import datetime

import msgspec

from actors.mail import FailureOutcome, OutboxMail
from schemas.mail import MailMessage
from server.db.queries import outbox as q
from server.db.unit import Database, UnitOfWork

FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
_MAX_ERROR_CHARS = 1000
SECRET_PLACEHOLDER = "{token}"  # noqa: S105 - where the secret goes, not a secret


def retry_delay(failed_attempts: int) -> datetime.timedelta:
    """Wait after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min, ... capped at 1 h."""
    if failed_attempts < 1:
        raise ValueError(f"failed_attempts must be at least 1, got {failed_attempts}")
    exponent = min(failed_attempts - 1, 32)  # 30 s * 2**32 is far past the cap already
    return datetime.timedelta(seconds=min(FIRST_RETRY_SECONDS * 2**exponent, MAX_RETRY_SECONDS))


async def enqueue(uow: UnitOfWork, message: MailMessage, *, secret: str | None = None) -> int:
    """Queue `message` in the unit's transaction; return the row id.

    `secret` replaces `SECRET_PLACEHOLDER` in the body when the mail is sent and is
    forgotten once it is. If the unit rolls back, the mail is never sent.
    """
    if secret is not None and SECRET_PLACEHOLDER not in message.body:
        raise ValueError("a mail with a secret needs the placeholder in its body")
    mail_id: int = await uow.value(
        q.ENQUEUE,
        {
            "recipient": message.recipient,
            "subject": message.subject,
            "body": message.body,
            "secret": secret,
        },
    )
    return mail_id


def rendered_body(body: str, secret: str | None) -> str:
    return body if secret is None else body.replace(SECRET_PLACEHOLDER, secret)


class _Claimed(msgspec.Struct, frozen=True):
    id: int
    recipient: str
    subject: str
    body: str
    secret: str | None
    attempts: int
    leased_until: datetime.datetime


class _Failed(msgspec.Struct, frozen=True):
    attempts: int
    next_attempt_at: datetime.datetime | None


class PostgresOutbox:
    """Implements `actors.mail.Outbox`; each call is one autocommitted statement, so the row
    locks of a claim last for that statement only."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def claim(self, *, limit: int, lease_seconds: float) -> list[OutboxMail]:
        params = {"limit": limit, "lease_seconds": lease_seconds}
        async with self._database.unit(autocommit=True) as uow:
            rows = await uow.all(q.CLAIM, params, _Claimed)
        claimed = [
            OutboxMail(
                id=row.id,
                message=MailMessage(
                    recipient=row.recipient,
                    subject=row.subject,
                    body=rendered_body(row.body, row.secret),
                ),
                attempts=row.attempts,
                leased_until=row.leased_until,
            )
            for row in rows
        ]
        claimed.sort(key=lambda mail: mail.id)
        return claimed

    async def mark_sent(self, mail_id: int) -> None:
        async with self._database.unit(autocommit=True) as uow:
            await uow.execute(q.MARK_SENT, {"id": mail_id})

    async def mark_failed(
        self, mail: OutboxMail, *, error: str, max_attempts: int
    ) -> FailureOutcome | None:
        """Count a failed attempt, retry after `retry_delay`, or give up at max_attempts.

        None means the row is no longer ours to settle: its lease ran out and another
        claimer took it, or it was sent meanwhile. A row given up keeps sent_at NULL
        and gets next_attempt_at 'infinity', so it is never due again and stays in
        the table, with its last_error, for a human.
        """
        params = {
            "id": mail.id,
            "leased_until": mail.leased_until,
            "error": error[:_MAX_ERROR_CHARS],
            "max_attempts": max_attempts,
            "delay": retry_delay(mail.attempts + 1),
        }
        async with self._database.unit(autocommit=True) as uow:
            row = await uow.one(q.MARK_FAILED, params, _Failed)
        if row is None:
            return None
        return FailureOutcome(attempts=row.attempts, next_attempt_at=row.next_attempt_at)

    async def release(self, mails: list[OutboxMail]) -> None:
        if not mails:
            return
        params = {"ids": [m.id for m in mails], "leases": [m.leased_until for m in mails]}
        async with self._database.unit(autocommit=True) as uow:
            await uow.execute(q.RELEASE, params)

    async def count_pending(self) -> int:
        async with self._database.unit(autocommit=True) as uow:
            return int(await uow.value(q.COUNT_PENDING, None))
