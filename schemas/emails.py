"""Email addresses: only what the mailer can deliver, and one spelling per mailbox.

An address is NFKC-normalised first (fullwidth and other compatibility forms become the
plain letters they stand for), then refused if it holds a control or invisible character
(zero-width, bidirectional controls), then checked by `email-validator` without DNS:
a dot-atom ASCII local part of at most 64 characters, no quoted strings or domain
literals, a domain valid under IDNA 2008 with a period, and no reserved name but `.test`.
A domain label must not mix scripts (a letter's script is read from its Unicode name;
Latin with Han and kana, Hangul or Bopomofo counts as one, as UTS #39 allows). The
address kept is the ASCII form (the domain as IDNA A-labels): what the mail's `To:` carries.

So look-alikes of an existing address either become that address (fullwidth forms, case
of the domain; the database compares the rest case-insensitively) or are refused
(Cyrillic or Greek letters in the local part, zero-width characters, a label mixing
Latin and Cyrillic).
"""

from __future__ import annotations

import unicodedata

import email_validator

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SCRIPT_FAMILIES = (
    frozenset({"LATIN", "CJK", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    frozenset({"LATIN", "CJK", "IDEOGRAPHIC", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "IDEOGRAPHIC", "HANGUL"}),
)


def normalize_email(value: str) -> str:
    """The address to store and send to, or ValueError saying what is wrong with `value`."""
    text = unicodedata.normalize("NFKC", value)
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in text):
        raise ValueError("An email address must not contain control or invisible characters")
    try:
        valid = email_validator.validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=False,
            test_environment=True,
            strict=True,
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    for label in valid.domain.split("."):
        if not _one_script(label):
            raise ValueError("A part of the domain mixes letters of different scripts")
    if valid.ascii_email is None:  # pragma: no cover - allow_smtputf8=False always sets it
        raise ValueError("The email address cannot be written in ASCII")
    return valid.ascii_email


def _one_script(label: str) -> bool:
    scripts = {
        unicodedata.name(char, "?").split(" ", 1)[0]
        for char in label
        if unicodedata.category(char).startswith("L")
    }
    return len(scripts) <= 1 or any(scripts <= family for family in _SCRIPT_FAMILIES)
