"""Mail actor: delivers the outbox with a MailSender, retrying failures with backoff.

The actor reaches the table through an `Outbox` and the mail server through a
`MailSender`, both given to it (server/db/outbox.py and server/mail/senders.py
implement them). Claim design (no row lock is held while talking to a mail server):

1. Claim: one autocommit `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED
   LIMIT batch_size) RETURNING` moves the due rows' next_attempt_at to
   now() + lease, where lease = 2 * (send_timeout + db_timeout). The row
   locks last for that statement only; afterwards the rows are simply not
   due, so other instances' claims pass them by. The lease end each row got
   is remembered as a fencing token.
2. Send: one message at a time, each under `send_timeout`. A message is only
   started while at most send_timeout has passed since the claim began (the
   first always is), so every send and its settling end inside the lease.
   Messages left when that budget is spent, or when a stop is requested, are
   released (due again now, attempts unchanged) and the next claim follows
   at once.
3. Settle, shielded from cancellation and under `db_timeout`: mark sent, or
   mark failed (attempts + 1, last_error, next_attempt_at = now() + 30 s,
   1 min, 2 min, ... capped at 1 h; 'infinity' at max_attempts, logged as
   an error). A failure is only recorded if the row still carries our lease.

If this process dies mid-batch, its leases run out and another claim resends
those rows: delivery is at least once, and exactly once in the normal case.
Database errors are noted in `details()` and retried on the next poll; they
do not crash the actor. `poke()` wakes it early after an enqueue.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import anyio
import psycopg
from anyio.abc import TaskStatus

from actors.base import Actor
from schemas.mail import MailMessage

logger = logging.getLogger("sevenp.mail")

DEFAULT_MAX_ATTEMPTS = 8
_DATABASE_ERRORS = (psycopg.Error, TimeoutError)  # PoolTimeout is a psycopg.OperationalError


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A claimed row: the message, its id, the attempts made before this one, the lease end."""

    id: int
    message: MailMessage
    attempts: int
    leased_until: datetime.datetime


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """What a failure recorded: attempts so far, and when to retry (None: given up)."""

    attempts: int
    next_attempt_at: datetime.datetime | None

    @property
    def gave_up(self) -> bool:
        return self.next_attempt_at is None


class Outbox(Protocol):
    """The queued mail, as the actor claims and settles it (one statement per call)."""

    async def claim(self, *, limit: int, lease_seconds: float) -> list[OutboxMail]:
        """Lease up to `limit` due rows for `lease_seconds`, by id; never one leased elsewhere."""
        ...

    async def mark_sent(self, mail_id: int) -> None: ...

    async def mark_failed(
        self, mail: OutboxMail, *, error: str, max_attempts: int
    ) -> FailureOutcome | None:
        """Count a failed attempt and schedule the retry; None when the lease is no longer ours."""
        ...

    async def release(self, mails: list[OutboxMail]) -> None:
        """Make claimed rows never tried due again now, attempts unchanged, if still ours."""
        ...

    async def count_pending(self) -> int:
        """Rows not yet sent and not given up."""
        ...


class MailSender(Protocol):
    """Delivers one message or raises; never retries on its own."""

    async def send(self, message: MailMessage) -> None: ...


class MailActor(Actor):
    """Claims due outbox rows in batches, sends each, and records the result."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        sender: MailSender,
        poll_seconds: float = 2.0,
        batch_size: int = 20,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        send_timeout: float = 15.0,
        db_timeout: float = 5.0,
    ) -> None:
        if poll_seconds <= 0 or send_timeout <= 0 or db_timeout <= 0:
            raise ValueError("poll_seconds, send_timeout and db_timeout must be positive")
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self.name = "mail"
        self._outbox = outbox
        self._sender = sender
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._send_timeout = send_timeout
        self._db_timeout = db_timeout
        self._lease_seconds = 2 * (send_timeout + db_timeout)
        self._poked = False
        self._wake: anyio.Event | None = None
        self._stop_requested = False
        self._sent = 0
        self._failed = 0
        self._gave_up = 0
        self._pending: int | None = None
        self._last_error: str | None = None

    def poke(self) -> None:
        """Deliver soon (call after an enqueue commits); never blocks, pokes coalesce.

        Call it from the event loop's thread. A poke during a batch makes the
        actor claim again right after it, without sleeping.
        """
        self._poked = True
        if self._wake is not None:
            self._wake.set()

    def request_stop(self) -> bool:
        """Finish the message in hand, hand the rest of the batch back, and return."""
        self._stop_requested = True
        self.poke()
        return True

    def mailbox_depth(self) -> int:
        return int(self._poked)

    def details(self) -> Mapping[str, object]:
        return {
            "sent": self._sent,
            "failed": self._failed,
            "gave_up": self._gave_up,
            "pending": self._pending,
            "last_error": self._last_error,
        }

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._stop_requested = False
        task_status.started()
        while not self._stop_requested:
            self._poked = False  # the claim below sees whatever was enqueued before
            more_due = await self.deliver_batch()
            if more_due or self._poked or self._stop_requested:
                continue
            self._wake = anyio.Event()
            try:
                with anyio.move_on_after(self._poll_seconds):
                    await self._wake.wait()
            finally:
                self._wake = None

    async def deliver_batch(self) -> bool:
        """Claim, send and settle one batch; True when more mail is probably due right now."""
        claim_started = anyio.current_time()
        try:
            with anyio.fail_after(self._db_timeout):
                batch = await self._outbox.claim(
                    limit=self._batch_size, lease_seconds=self._lease_seconds
                )
        except _DATABASE_ERRORS as exc:
            self._note_error("claiming mail", exc)
            return False
        waiting = list(batch)
        try:
            while waiting:
                first = len(waiting) == len(batch)
                in_budget = anyio.current_time() - claim_started <= self._send_timeout
                if not first and (self._stop_requested or not in_budget):
                    break
                await self._deliver(waiting.pop(0))
        finally:
            if waiting:
                await self._release(waiting)
        await self._refresh_pending()
        return bool(waiting) or len(batch) == self._batch_size

    async def _deliver(self, mail: OutboxMail) -> None:
        try:
            with anyio.fail_after(self._send_timeout):
                await self._sender.send(mail.message)
        except Exception as exc:
            self._failed += 1
            error = _describe(exc, timeout=self._send_timeout)
            self._last_error = f"mail {mail.id}: {error}"
            await self._record_failure(mail, error)
        else:
            self._sent += 1
            await self._record_sent(mail)

    async def _record_sent(self, mail: OutboxMail) -> None:
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._db_timeout):
                    await self._outbox.mark_sent(mail.id)
            except _DATABASE_ERRORS as exc:
                # The lease will run out and the mail be sent again: at least once.
                self._note_error(f"marking mail {mail.id} sent", exc)

    async def _record_failure(self, mail: OutboxMail, error: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._db_timeout):
                    outcome = await self._outbox.mark_failed(
                        mail, error=error, max_attempts=self._max_attempts
                    )
            except _DATABASE_ERRORS as exc:
                self._note_error(f"marking mail {mail.id} failed", exc)
                return
        if outcome is None:
            logger.warning(
                "mail %d failed (%s); its lease had passed to another sender", mail.id, error
            )
        elif outcome.gave_up:
            self._gave_up += 1
            logger.error(
                "mail %d to %s given up after %d attempts; last error: %s",
                mail.id,
                mail.message.recipient,
                outcome.attempts,
                error,
            )
        else:
            logger.warning(
                "mail %d attempt %d failed (%s); next attempt at %s",
                mail.id,
                outcome.attempts,
                error,
                outcome.next_attempt_at,
            )

    async def _release(self, mails: list[OutboxMail]) -> None:
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self._db_timeout):
                    await self._outbox.release(mails)
            except _DATABASE_ERRORS as exc:
                # Their leases will run out instead; they are only delayed.
                self._note_error("handing back unsent mail", exc)

    async def _refresh_pending(self) -> None:
        try:
            with anyio.fail_after(self._db_timeout):
                self._pending = await self._outbox.count_pending()
        except _DATABASE_ERRORS as exc:
            self._note_error("counting pending mail", exc)

    def _note_error(self, doing: str, exc: BaseException) -> None:
        self._last_error = f"{doing}: {_describe(exc, timeout=self._db_timeout)}"
        logger.warning("mail actor: %s", self._last_error)


def _describe(exc: BaseException, *, timeout: float) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, TimeoutError) and not text:
        return f"TimeoutError: no answer within {timeout:g}s"
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
