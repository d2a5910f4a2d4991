"""Seeding interface: users with known passwords and valid tokens for the token scenarios.

Placeholder until the identity schema lands: ``seed_sessions`` raises ``NotImplementedError`` and
the runner marks every scenario that needs tokens as pending. The replacement must keep this
signature; it should hash the shared password once and bulk-insert (seeding 17,500 users one
argon2 hash at a time would take minutes), and mint tokens with ``jwt_secret`` exactly as the
server does, one distinct session (refresh token) per user.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeededSession:
    """One seeded user and a live session of it."""

    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


async def seed_sessions(dsn: str, count: int, *, jwt_secret: str) -> list[SeededSession]:
    """Create ``count`` users in the server's database, each with one session; return them."""
    raise NotImplementedError("identity schema pending")
