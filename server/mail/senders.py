"""Mail senders: deliver one message to the console log, a directory of .eml files, or SMTP.

`sender_from_url` turns `MAIL_URL` into a sender:

- `console://` logs each message (development only; production refuses it);
- `file:///some/dir` writes one RFC 5322 `.eml` file per message, as
  Django's file backend does, atomically (temp file, then rename);
- `smtp://[user:pass@]host[:port]` (default port 25), `smtps://...` for
  implicit TLS (default port 465), `?starttls=1` to upgrade a plain
  connection, `?timeout=seconds` for the per-message deadline (default 10).

Senders raise on failure; retrying is the outbox's job, not theirs.
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
import logging
import os
import smtplib
import ssl
import tempfile
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import anyio

from actors.mail import MailSender
from schemas.mail import MailMessage, check_address

logger = logging.getLogger("sevenp.mail")

DEFAULT_MAIL_FROM = "no-reply@sevenp.local"
DEFAULT_SMTP_TIMEOUT = 10.0
_SMTP_THREADS = 4
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def build_email(message: MailMessage, *, mail_from: str) -> EmailMessage:
    """The RFC 5322 message: From, To, Subject, Date, Message-ID and a UTF-8 text body.

    Lines end in LF, as .eml files on disk do (Django's file backend too);
    smtplib sends with CRLF whatever the policy.
    """
    mail = EmailMessage(policy=email.policy.default)
    mail["From"] = mail_from
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.format_datetime(datetime.datetime.now(datetime.UTC))
    # An explicit domain: make_msgid() would otherwise ask DNS for our FQDN.
    mail["Message-ID"] = email.utils.make_msgid(domain=_domain_of(mail_from))
    mail.set_content(message.body)
    return mail


class ConsoleSender:
    """Logs each message in full on the `sevenp.mail` logger (development)."""

    def __init__(self, *, mail_from: str = DEFAULT_MAIL_FROM) -> None:
        self.mail_from = mail_from

    async def send(self, message: MailMessage) -> None:
        mail = build_email(message, mail_from=self.mail_from)
        logger.info("mail to %s (console sender):\n%s", message.recipient, mail.as_string())


class FileSender:
    """Writes one `<UTC timestamp>-<uuid>.eml` file per message into `directory`.

    The file appears whole or not at all: it is written under a hidden temporary
    name in the same directory, flushed to disk, then renamed.
    """

    def __init__(self, directory: str | os.PathLike[str], *, mail_from: str = DEFAULT_MAIL_FROM):
        self.directory = Path(directory)
        self.mail_from = mail_from

    async def send(self, message: MailMessage) -> None:
        data = build_email(message, mail_from=self.mail_from).as_bytes()
        await anyio.to_thread.run_sync(self._write, data)

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        final = self.directory / f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex}.eml"
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return final


class SmtpSender:
    """Delivers through an SMTP server with smtplib, one connection per message.

    smtplib blocks, so it runs in a worker thread (at most a few at once) under
    `timeout`: the socket gives up after `timeout` seconds of silence, and the
    awaiting task stops waiting after `timeout` seconds in all.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        starttls: bool = False,
        timeout: float = DEFAULT_SMTP_TIMEOUT,
        *,
        mail_from: str = DEFAULT_MAIL_FROM,
    ) -> None:
        if use_tls and starttls:
            raise ValueError("SMTP: choose implicit TLS (smtps://) or STARTTLS, not both")
        if timeout <= 0:
            raise ValueError(f"SMTP timeout must be positive, got {timeout}")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.starttls = starttls
        self.timeout = timeout
        self.mail_from = mail_from
        self._threads = anyio.CapacityLimiter(_SMTP_THREADS)

    def __repr__(self) -> str:
        scheme = "smtps" if self.use_tls else "smtp"
        return f"SmtpSender({scheme}://{self.host}:{self.port}, starttls={self.starttls})"

    async def send(self, message: MailMessage) -> None:
        mail = build_email(message, mail_from=self.mail_from)
        with anyio.fail_after(self.timeout):
            await anyio.to_thread.run_sync(
                self._deliver, mail, abandon_on_cancel=True, limiter=self._threads
            )

    def _deliver(self, mail: EmailMessage) -> None:
        context = ssl.create_default_context()
        client = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            if self.use_tls
            else smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        )
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(mail)


def sender_from_url(url: str, *, mail_from: str = DEFAULT_MAIL_FROM) -> MailSender:
    """The sender `url` (MAIL_URL) names; ValueError saying what is wrong otherwise."""
    check_address(mail_from, what="MAIL_FROM")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise ValueError(f"invalid MAIL_URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "console":
        if parts.netloc or parts.path or parts.query:
            raise ValueError("invalid MAIL_URL: console:// takes no host, path or options")
        return ConsoleSender(mail_from=mail_from)
    if scheme == "file":
        return _file_sender(parts, mail_from=mail_from)
    if scheme in ("smtp", "smtps"):
        return _smtp_sender(parts, mail_from=mail_from)
    raise ValueError(
        f"invalid MAIL_URL: unsupported scheme {parts.scheme!r};"
        " use console://, file:///absolute/dir, smtp://host:port or smtps://host:port"
    )


def _file_sender(parts: SplitResult, *, mail_from: str) -> FileSender:
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"invalid MAIL_URL: file:// names a host ({parts.netloc!r}); write file:///absolute/dir"
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ValueError("invalid MAIL_URL: file:// needs an absolute directory, file:///dir")
    if parts.query:
        raise ValueError("invalid MAIL_URL: file:// takes no options")
    return FileSender(Path(path), mail_from=mail_from)


def _smtp_sender(parts: SplitResult, *, mail_from: str) -> SmtpSender:
    implicit_tls = parts.scheme.lower() == "smtps"
    where = f"{parts.scheme}://{parts.hostname or ''}"  # never echo the password
    if not parts.hostname:
        raise ValueError(f"invalid MAIL_URL: {parts.scheme}:// needs a host")
    if parts.path not in ("", "/"):
        raise ValueError(f"invalid MAIL_URL: {where} takes no path")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid MAIL_URL: {where} has a bad port") from None
    if port == 0:
        raise ValueError(f"invalid MAIL_URL: {where} has a bad port")
    starttls, timeout = False, DEFAULT_SMTP_TIMEOUT
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "starttls":
            starttls = _parse_flag(value, where=where)
        elif key == "timeout":
            timeout = _parse_timeout(value, where=where)
        else:
            raise ValueError(
                f"invalid MAIL_URL: {where} has unknown option {key!r} (known: starttls, timeout)"
            )
    if implicit_tls and starttls:
        raise ValueError("invalid MAIL_URL: smtps:// is already TLS; drop ?starttls")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError(f"invalid MAIL_URL: {where} has a password but no user name")
    return SmtpSender(
        parts.hostname,
        port if port is not None else (465 if implicit_tls else 25),
        username,
        password,
        use_tls=implicit_tls,
        starttls=starttls,
        timeout=timeout,
        mail_from=mail_from,
    )


def _parse_flag(value: str, *, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"invalid MAIL_URL: {where} starttls must be 1 or 0, got {value!r}")


def _parse_timeout(value: str, *, where: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"invalid MAIL_URL: {where} timeout must be positive seconds")
    return seconds


def _domain_of(address: str) -> str:
    return email.utils.parseaddr(address)[1].rpartition("@")[2] or "localhost"
