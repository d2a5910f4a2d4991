"""Outgoing mail: the outbox on real PostgreSQL, the senders, and the mail actor delivering.

The actor claims every due row of its table, so the actor tests run on a
private migrated database: a live server's own mail actor on the shared
`database_url` would otherwise race them for rows.
"""

from __future__ import annotations

import asyncio
import datetime
import email.policy
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from actors.mail import MailActor
from schemas.mail import MailMessage
from server.db.migrate import apply_migrations
from server.db.outbox import SECRET_PLACEHOLDER, PostgresOutbox, enqueue, retry_delay
from server.db.statement import Statement
from server.db.unit import Database
from server.mail import ConsoleSender, FileSender, SmtpSender, sender_from_url
from tests.support.services import free_port, throwaway_database
from tests.support.waiting import eventually

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def outbox_database_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        yield url


@pytest.fixture
def tag(outbox_database_url: str) -> Iterator[str]:
    """A unique recipient prefix for one test; its outbox rows are deleted afterwards."""
    prefix = f"mail-{uuid.uuid4().hex[:12]}"
    yield prefix
    with psycopg.connect(outbox_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM mail_outbox WHERE recipient LIKE %s", (f"{prefix}%",))


@pytest.fixture
async def pool(outbox_database_url: str) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        outbox_database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def outbox(pool: Pool) -> PostgresOutbox:
    return PostgresOutbox(Database(pool))


def message(recipient: str, *, token: str = "tok-123") -> MailMessage:
    return MailMessage(
        recipient=recipient,
        subject="Réinitialiser votre mot de passe",
        body=f"Hello,\n\nyour reset token: {token}\n",
    )


async def enqueue_committed(pool: Pool, *messages: MailMessage) -> list[int]:
    async with Database(pool).unit() as uow:
        return [await enqueue(uow, m) for m in messages]


async def outbox_row(pool: Pool, mail_id: int) -> dict[str, Any]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT attempts, sent_at, last_error,"
            " CASE WHEN isfinite(next_attempt_at)"
            " THEN extract(epoch FROM next_attempt_at - now())::float8 END,"
            " isfinite(next_attempt_at)"
            " FROM mail_outbox WHERE id = %s",
            (mail_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return {
        "attempts": row[0],
        "sent_at": row[1],
        "last_error": row[2],
        "due_in": row[3],
        "finite": row[4],
    }


def eml_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


def read_eml(path: Path) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


class PausingSender:
    """A FileSender that takes `seconds` per message, to make batches overlap in time."""

    def __init__(self, inner: FileSender, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def send(self, message: MailMessage) -> None:
        await anyio.sleep(self.seconds)
        await self.inner.send(message)


class ChangeFailed(Exception):
    pass


_COUNT_BY_ID = Statement("test.count_by_id", "SELECT count(*) FROM mail_outbox WHERE id = %(id)s")


async def enqueue_then_fail(database: Database, mail: MailMessage) -> None:
    """Queue a mail in a unit whose change then fails, so all of it rolls back."""
    async with database.unit() as uow:
        mail_id = await enqueue(uow, mail)
        assert await uow.value(_COUNT_BY_ID, {"id": mail_id}) == 1  # visible inside the unit
        raise ChangeFailed


# --- the outbox --------------------------------------------------------------


async def test_enqueue_in_a_rolled_back_transaction_leaves_nothing(pool: Pool) -> None:
    recipient = f"rollback-{uuid.uuid4().hex[:12]}@example.test"
    database = Database(pool)
    async with pool.connection() as conn:
        with pytest.raises(ChangeFailed):
            await enqueue_then_fail(database, message(recipient))
        cursor = await conn.execute(
            "SELECT count(*) FROM mail_outbox WHERE recipient = %s", (recipient,)
        )
        assert await cursor.fetchone() == (0,)

        async with database.unit() as uow:
            kept = await enqueue(uow, message(recipient))
        cursor = await conn.execute(
            "SELECT recipient, attempts, sent_at FROM mail_outbox WHERE id = %s", (kept,)
        )
        assert await cursor.fetchone() == (recipient, 0, None)
        await conn.execute("DELETE FROM mail_outbox WHERE recipient = %s", (recipient,))


def test_retry_delay_doubles_from_30_seconds_up_to_an_hour() -> None:
    schedule = [retry_delay(n).total_seconds() for n in range(1, 11)]
    assert schedule == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert retry_delay(10_000) == datetime.timedelta(hours=1)
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(0)


async def test_failures_back_off_then_give_up_at_max_attempts(
    pool: Pool, outbox: PostgresOutbox, tag: str
) -> None:
    (mail_id,) = await enqueue_committed(pool, message(f"{tag}@example.test"))
    for attempt, delay in enumerate([30, 60, 120], start=1):
        (claimed,) = await outbox.claim(limit=1, lease_seconds=60)
        assert (claimed.id, claimed.attempts) == (mail_id, attempt - 1)
        outcome = await outbox.mark_failed(claimed, error=f"boom {attempt}", max_attempts=4)
        assert outcome is not None
        assert (outcome.attempts, outcome.gave_up) == (attempt, False)
        row = await outbox_row(pool, mail_id)
        assert (row["attempts"], row["last_error"]) == (attempt, f"boom {attempt}")
        assert delay - 2 < row["due_in"] <= delay
        async with pool.connection() as conn:  # skip the wait
            await conn.execute(
                "UPDATE mail_outbox SET next_attempt_at = now() WHERE id = %s", (mail_id,)
            )

    (claimed,) = await outbox.claim(limit=1, lease_seconds=60)
    outcome = await outbox.mark_failed(claimed, error="final", max_attempts=4)
    assert outcome is not None
    assert (outcome.attempts, outcome.gave_up) == (4, True)
    assert await outbox.claim(limit=10, lease_seconds=60) == []
    row = await outbox_row(pool, mail_id)
    assert (row["sent_at"], row["finite"], row["last_error"]) == (None, False, "final")


async def _stored_secret_and_body(pool: Pool, mail_id: int) -> tuple[str | None, str]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT secret, body FROM mail_outbox WHERE id = %s", (mail_id,)
        )
        row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


async def test_a_secret_is_rendered_at_claim_and_forgotten_once_sent_or_given_up(
    pool: Pool, outbox: PostgresOutbox, tag: str
) -> None:
    with_secret = MailMessage(
        recipient=f"{tag}@example.test", subject="Reset", body=f"token: {SECRET_PLACEHOLDER}\n"
    )
    async with Database(pool).unit() as uow:
        sent_id = await enqueue(uow, with_secret, secret="s3cret-sent")
        failed_id = await enqueue(uow, with_secret, secret="s3cret-failed")
    assert await _stored_secret_and_body(pool, sent_id) == (
        "s3cret-sent",
        f"token: {SECRET_PLACEHOLDER}\n",
    )

    claimed = {m.id: m for m in await outbox.claim(limit=10, lease_seconds=60)}
    assert claimed[sent_id].message.body == "token: s3cret-sent\n"
    assert claimed[failed_id].message.body == "token: s3cret-failed\n"

    await outbox.mark_sent(sent_id)
    failure = await outbox.mark_failed(claimed[failed_id], error="boom", max_attempts=2)
    assert failure is not None
    assert not failure.gave_up
    assert (await _stored_secret_and_body(pool, failed_id))[0] == "s3cret-failed"  # for a retry
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE mail_outbox SET next_attempt_at = now() WHERE id = %s", (failed_id,)
        )
    (again,) = await outbox.claim(limit=10, lease_seconds=60)
    assert again.message.body == "token: s3cret-failed\n"
    given_up = await outbox.mark_failed(again, error="boom", max_attempts=2)
    assert given_up is not None
    assert given_up.gave_up

    for mail_id in (sent_id, failed_id):
        assert await _stored_secret_and_body(pool, mail_id) == (
            None,
            f"token: {SECRET_PLACEHOLDER}\n",
        )


async def test_a_secret_needs_its_placeholder(pool: Pool) -> None:
    async with Database(pool).unit() as uow:
        with pytest.raises(ValueError, match="placeholder"):
            await enqueue(uow, message("x@example.test"), secret="s3cret")


async def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(
    pool: Pool, tag: str
) -> None:
    ids = await enqueue_committed(pool, *(message(f"{tag}-{i}@example.test") for i in range(3)))
    first, second = PostgresOutbox(Database(pool)), PostgresOutbox(Database(pool))
    batch_one = await first.claim(limit=2, lease_seconds=60)
    batch_two = await second.claim(limit=5, lease_seconds=60)
    assert [m.id for m in batch_one] == ids[:2]
    assert [m.id for m in batch_two] == ids[2:]


# --- the senders -------------------------------------------------------------


async def test_file_sender_writes_one_parseable_eml_file(tmp_path: Path) -> None:
    sender = FileSender(tmp_path / "outbox", mail_from="Sevenp <no-reply@sevenp.test>")
    await sender.send(message("ayşe@example.test", token="reset-ğüş-42"))

    files = list((tmp_path / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml"]  # and no temporary file left behind
    mail = read_eml(files[0])
    assert mail["To"] == "ayşe@example.test"
    assert mail["From"] == "Sevenp <no-reply@sevenp.test>"
    assert mail["Subject"] == "Réinitialiser votre mot de passe"
    assert mail["Message-ID"].endswith("@sevenp.test>")
    assert mail["Date"] is not None
    assert "your reset token: reset-ğüş-42" in body_of(mail)
    assert b"\r\n" not in files[0].read_bytes()  # LF line ends, like other .eml files on disk


async def test_console_sender_logs_the_mail(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sevenp.mail"):
        await ConsoleSender().send(message("console@example.test", token="visible-token"))
    assert "console@example.test" in caplog.text
    assert "visible-token" in caplog.text


def test_sender_from_url_reads_every_scheme(tmp_path: Path) -> None:
    assert isinstance(sender_from_url("console://", mail_from="a@b.test"), ConsoleSender)
    file_sender = sender_from_url(f"file://{tmp_path}", mail_from="a@b.test")
    assert isinstance(file_sender, FileSender)
    assert file_sender.directory == tmp_path

    plain = sender_from_url("smtp://mail.example.test:2525", mail_from="a@b.test")
    assert isinstance(plain, SmtpSender)
    assert (plain.host, plain.port, plain.use_tls, plain.starttls) == (
        "mail.example.test",
        2525,
        False,
        False,
    )
    assert (plain.username, plain.mail_from) == (None, "a@b.test")

    secured = sender_from_url("smtps://us%40er:p%3Ass@mail.example.test", mail_from="a@b.test")
    assert isinstance(secured, SmtpSender)
    assert (secured.port, secured.use_tls, secured.username, secured.password) == (
        465,
        True,
        "us@er",
        "p:ss",
    )
    upgraded = sender_from_url("smtp://mx.example.test?starttls=1&timeout=3", mail_from="a@b.test")
    assert isinstance(upgraded, SmtpSender)
    assert (upgraded.port, upgraded.starttls, upgraded.timeout) == (25, True, 3.0)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("ftp://example.test", "unsupported scheme"),
        ("", "unsupported scheme"),
        ("file://relative/dir", "names a host"),
        ("file:", "absolute directory"),
        ("smtp://", "needs a host"),
        ("smtp://host:notaport", "bad port"),
        ("smtp://host:70000", "bad port"),
        ("smtp://host?starttls=maybe", "starttls must be 1 or 0"),
        ("smtp://host?tls=1", "unknown option 'tls'"),
        ("smtp://host?timeout=0", "timeout must be positive"),
        ("smtps://host?starttls=1", "already TLS"),
        ("smtp://:secret@host", "password but no user name"),
        ("console://somewhere", "takes no host"),
    ],
)
def test_sender_from_url_explains_bad_urls(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="invalid MAIL_URL") as caught:
        sender_from_url(url, mail_from="a@b.test")
    assert complaint in str(caught.value)
    assert "secret" not in str(caught.value)


def test_bad_addresses_are_refused_before_they_reach_a_header() -> None:
    with pytest.raises(ValueError, match="MAIL_FROM"):
        sender_from_url("console://", mail_from="not an address")
    with pytest.raises(ValueError, match="line breaks"):
        MailMessage(recipient="a@b.test\r\nBcc: x@y.test", subject="s", body="b")
    with pytest.raises(ValueError, match="line breaks"):
        MailMessage(recipient="a@b.test", subject="s\nBcc: x@y.test", body="b")


# --- the actor ---------------------------------------------------------------


async def test_the_actor_sends_queued_mail_within_a_second_of_a_poke(
    pool: Pool, outbox: PostgresOutbox, tag: str, tmp_path: Path
) -> None:
    actor = MailActor(outbox=outbox, sender=FileSender(tmp_path), poll_seconds=60)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)

        async def idle() -> bool:
            return actor.details()["pending"] is not None

        await eventually(
            idle, within=5, poll=0.02
        )  # the start-up round is over; now it sleeps 60 s
        (mail_id,) = await enqueue_committed(pool, message(f"{tag}@example.test", token="t-77"))
        actor.poke()

        async def delivered() -> bool:
            return bool(eml_files(tmp_path))

        await eventually(delivered, within=1.0, poll=0.02)
        mail = read_eml(eml_files(tmp_path)[0])
        assert mail["To"] == f"{tag}@example.test"
        assert "t-77" in body_of(mail)

        async def recorded() -> bool:
            return (await outbox_row(pool, mail_id))["sent_at"] is not None

        await eventually(recorded, within=1.0, poll=0.02)
        assert actor.details()["sent"] == 1
        assert actor.request_stop()
    assert (await outbox_row(pool, mail_id))["attempts"] == 0


async def test_a_failing_smtp_server_is_retried_later_and_the_actor_keeps_running(
    pool: Pool, outbox: PostgresOutbox, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    closed_port = free_port()  # bound then closed: nothing listens there
    sender = sender_from_url(f"smtp://127.0.0.1:{closed_port}?timeout=2", mail_from="a@b.test")
    actor = MailActor(outbox=outbox, sender=sender, poll_seconds=60, send_timeout=3)
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        for round_number in (1, 2):
            (mail_id,) = await enqueue_committed(
                pool, message(f"{tag}-{round_number}@example.test")
            )
            actor.poke()

            async def attempted(mail_id: int = mail_id) -> bool:
                return bool((await outbox_row(pool, mail_id))["attempts"] == 1)

            await eventually(attempted, within=5, poll=0.02)
            row = await outbox_row(pool, mail_id)
            assert row["sent_at"] is None
            assert "Connection refused" in row["last_error"] or "Errno" in row["last_error"]
            assert 25 < row["due_in"] <= 30  # the first retry waits 30 s
        assert actor.details()["failed"] == 2
        assert actor.details()["sent"] == 0
        assert "mail " in str(actor.details()["last_error"])
        tg.cancel_scope.cancel()
    assert "attempt 1 failed" in caplog.text


async def test_the_actor_gives_up_at_max_attempts_and_logs_an_error(
    pool: Pool, outbox: PostgresOutbox, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    sender = sender_from_url(f"smtp://127.0.0.1:{free_port()}?timeout=2", mail_from="a@b.test")
    actor = MailActor(outbox=outbox, sender=sender, poll_seconds=60, max_attempts=1)
    (mail_id,) = await enqueue_committed(pool, message(f"{tag}@example.test"))
    with caplog.at_level(logging.ERROR, logger="sevenp.mail"):
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)

            async def given_up() -> bool:
                return actor.details()["gave_up"] == 1

            await eventually(given_up, within=5, poll=0.02)
            tg.cancel_scope.cancel()
    row = await outbox_row(pool, mail_id)
    assert (row["attempts"], row["sent_at"], row["finite"]) == (1, None, False)
    assert f"mail {mail_id} to {tag}@example.test given up after 1 attempts" in caplog.text


async def test_real_smtp_delivery_through_a_local_server(
    pool: Pool, outbox: PostgresOutbox, tag: str
) -> None:
    controller_module = pytest.importorskip(
        "aiosmtpd.controller", reason="aiosmtpd (a real local SMTP server) is not installed"
    )
    smtp_module = pytest.importorskip("aiosmtpd.smtp")
    received: list[Any] = []

    class Inbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 Message accepted for delivery"

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cr:t"
        return smtp_module.AuthResult(success=ok)

    port = free_port()
    controller = controller_module.Controller(
        Inbox(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
        auth_required=False,
    )
    await anyio.to_thread.run_sync(controller.start)
    try:
        sender = sender_from_url(
            f"smtp://mailer:s3cr%3At@127.0.0.1:{port}", mail_from="Sevenp <no-reply@sevenp.test>"
        )
        actor = MailActor(outbox=outbox, sender=sender, poll_seconds=60)
        (mail_id,) = await enqueue_committed(
            pool, message(f"{tag}@example.test", token="verify-9f8e")
        )
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)

            async def recorded() -> bool:
                return (await outbox_row(pool, mail_id))["sent_at"] is not None

            await eventually(recorded, within=5, poll=0.02)
            tg.cancel_scope.cancel()
    finally:
        await anyio.to_thread.run_sync(controller.stop)

    assert len(received) == 1
    envelope = received[0]
    assert envelope.mail_from == "no-reply@sevenp.test"
    assert envelope.rcpt_tos == [f"{tag}@example.test"]
    mail = BytesParser(policy=email.policy.default).parsebytes(envelope.original_content)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "Réinitialiser votre mot de passe"
    assert "verify-9f8e" in body_of(mail)


async def test_two_actors_on_one_outbox_never_send_a_message_twice(
    pool: Pool, tag: str, tmp_path: Path
) -> None:
    recipients = [f"{tag}-{i}@example.test" for i in range(30)]
    await enqueue_committed(pool, *(message(r) for r in recipients))
    actors = [
        MailActor(
            outbox=PostgresOutbox(Database(pool)),
            sender=PausingSender(FileSender(tmp_path), 0.01),
            batch_size=4,
            poll_seconds=0.05,
        )
        for _ in range(2)
    ]
    async with anyio.create_task_group() as tg:
        for actor in actors:
            await tg.start(actor.run)

        async def all_sent() -> bool:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM mail_outbox"
                    " WHERE recipient LIKE %s AND sent_at IS NOT NULL",
                    (f"{tag}-%",),
                )
                return await cursor.fetchone() == (30,)

        await eventually(all_sent, within=10, poll=0.02)
        await anyio.sleep(0.2)  # room for a duplicate to show up, if there were one
        tg.cancel_scope.cancel()

    files = eml_files(tmp_path)
    assert len(files) == 30
    assert sorted(read_eml(f)["To"] for f in files) == sorted(recipients)
    sent = [actor.details()["sent"] for actor in actors]
    assert sum(sent) == 30  # type: ignore[arg-type]
    assert all(count > 0 for count in sent)  # type: ignore[operator]


async def test_a_batch_outlasting_its_budget_hands_the_rest_back(
    pool: Pool, outbox: PostgresOutbox, tag: str, tmp_path: Path
) -> None:
    recipients = [f"{tag}-{i}@example.test" for i in range(6)]
    await enqueue_committed(pool, *(message(r) for r in recipients))
    # 0.15 s per message against a 0.2 s start budget: two per claim, then the rest go back.
    actor = MailActor(
        outbox=outbox,
        sender=PausingSender(FileSender(tmp_path), 0.15),
        batch_size=6,
        send_timeout=0.2,
        poll_seconds=60,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)

        async def all_sent() -> bool:
            return actor.details()["sent"] == 6

        await eventually(all_sent, within=5, poll=0.02)
        tg.cancel_scope.cancel()
    assert sorted(read_eml(f)["To"] for f in eml_files(tmp_path)) == sorted(recipients)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT max(attempts), count(*) FILTER (WHERE sent_at IS NULL)"
            " FROM mail_outbox WHERE recipient LIKE %s",
            (f"{tag}-%",),
        )
        assert await cursor.fetchone() == (0, 0)


async def test_request_stop_ends_the_run_loop(outbox: PostgresOutbox) -> None:
    actor = MailActor(outbox=outbox, sender=ConsoleSender(), poll_seconds=60)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(actor.run)
            assert actor.request_stop()
