"""Outgoing mail: the senders chosen by MAIL_URL.

Services queue a mail with `server.db.outbox.enqueue(uow, MailMessage(...))` inside the
unit of the change that causes it; the mail actor (actors/mail.py) claims due rows and
delivers them with one of these senders.
"""

from server.mail.senders import (
    DEFAULT_MAIL_FROM,
    ConsoleSender,
    FileSender,
    SmtpSender,
    build_email,
    sender_from_url,
)

__all__ = [
    "DEFAULT_MAIL_FROM",
    "ConsoleSender",
    "FileSender",
    "SmtpSender",
    "build_email",
    "sender_from_url",
]
