"""Outgoing mail: senders chosen by MAIL_URL, and the outbox that queues mail transactionally.

Services call `enqueue_mail(conn, MailMessage(...))` inside the transaction of
the change that causes the mail, then `MailActor.poke()`; the mail actor
(actors/mail.py) claims due rows and delivers them with a `MailSender`.
"""

from server.mail.outbox import enqueue_mail, retry_delay
from server.mail.senders import (
    DEFAULT_MAIL_FROM,
    ConsoleSender,
    FileSender,
    MailMessage,
    MailSender,
    SmtpSender,
    build_email,
    sender_from_url,
)

__all__ = [
    "DEFAULT_MAIL_FROM",
    "ConsoleSender",
    "FileSender",
    "MailMessage",
    "MailSender",
    "SmtpSender",
    "build_email",
    "enqueue_mail",
    "retry_delay",
    "sender_from_url",
]
