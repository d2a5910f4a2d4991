"""Statements that queue mail in the caller's transaction (the mail actor sends it later)."""

from __future__ import annotations

from server.db.statement import Statement

ENQUEUE = Statement(
    "outbox.enqueue",
    "INSERT INTO mail_outbox (recipient, subject, body)"
    " VALUES (%(recipient)s, %(subject)s, %(body)s) RETURNING id",
)
