"""Files handed to wrk: bearer tokens (synthetic or seeded), fixed bodies, login bodies."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

import msgspec

from benchmarks.seed import SeededSession

SYNTHETIC_TOKEN_CHARS = 260  # about the length of a real access JWT


def write_synthetic_tokens(path: Path, count: int) -> Path:
    """Random token-sized strings, so ceilings get the same request sizes as the server."""
    lines = (
        secrets.token_urlsafe(SYNTHETIC_TOKEN_CHARS)[:SYNTHETIC_TOKEN_CHARS] for _ in range(count)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tokens(path: Path, sessions: Sequence[SeededSession]) -> Path:
    """One access token per line."""
    path.write_text("".join(s.access_token + "\n" for s in sessions))
    return path


def write_login_bodies(path: Path, sessions: Sequence[SeededSession]) -> Path:
    """One ``{"email","password"}`` JSON body per line."""
    encode = msgspec.json.encode
    path.write_bytes(
        b"".join(encode({"email": s.email, "password": s.password}) + b"\n" for s in sessions)
    )
    return path


def write_body(path: Path, body: object) -> Path:
    """A fixed JSON body."""
    path.write_bytes(msgspec.json.encode(body))
    return path
