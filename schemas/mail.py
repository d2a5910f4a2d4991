"""A mail to send: one plain-text message to one recipient, checked before it reaches a header."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MailMessage:
    """One plain-text mail to one recipient."""

    recipient: str
    subject: str
    body: str

    def __post_init__(self) -> None:
        check_address(self.recipient, what="recipient")
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError("mail subject must not contain line breaks")


def check_address(address: str, *, what: str) -> None:
    """ValueError unless `address` is one mail address without line breaks."""
    if "\r" in address or "\n" in address:
        raise ValueError(f"{what} must not contain line breaks")
    _, parsed = email.utils.parseaddr(address)
    if "@" not in parsed or parsed.startswith("@") or parsed.endswith("@"):
        raise ValueError(f"{what} is not a mail address: {address!r}")
