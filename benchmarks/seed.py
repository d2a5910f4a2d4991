"""Seeding: users with a known password and a live session each, with their tokens, fast.

One argon2 hash of the shared password serves every user (a login still pays a full verify),
the rows go in with COPY, and the access tokens are minted with the server's own issuer and
secret, so thousands of sessions cost seconds, not thousands of logins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg

from server.security.passwords import Argon2Settings, PasswordHasher
from server.security.tokens import TokenIssuer, hash_opaque_token, new_opaque_token

SEED_PASSWORD = "bench passphrase for seeded users 7"


@dataclass(frozen=True)
class SeededSession:
    """One seeded user and a live session of it."""

    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


async def seed_sessions(
    dsn: str,
    count: int,
    *,
    jwt_secret: str,
    access_ttl_seconds: int = 4 * 3600,
    role: str = "student",
) -> list[SeededSession]:
    """Create ``count`` users of ``role`` in the server's database, each with one session;
    return them."""
    hasher = PasswordHasher(Argon2Settings(), max_concurrency=1)
    password_hash = await hasher.hash(SEED_PASSWORD)
    issuer = TokenIssuer(secret=jwt_secret.encode(), access_ttl_seconds=access_ttl_seconds)
    run = uuid.uuid4().hex[:8]
    seeded: list[SeededSession] = []
    users: list[tuple[str, str]] = []
    sessions: list[tuple[str, str]] = []
    refresh_rows: list[tuple[bytes, str]] = []
    for index in range(count):
        user_id, session_id = str(uuid.uuid4()), str(uuid.uuid4())
        email = f"bench-{run}-{role}-{index}@bench.example"
        refresh = new_opaque_token()
        access, _ = issuer.issue_access(user_id=user_id, session_id=session_id, role=role)
        users.append((user_id, email))
        sessions.append((session_id, user_id))
        refresh_rows.append((hash_opaque_token(refresh), session_id))
        seeded.append(SeededSession(user_id, email, SEED_PASSWORD, access, refresh))
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            async with cur.copy(
                "COPY users (id, email, password_hash, first_name, last_name, is_email_verified,"
                " role) FROM STDIN"
            ) as copy:
                for user_id, email in users:
                    await copy.write_row(
                        (user_id, email, password_hash, "Bench", "User", True, role)
                    )
            async with cur.copy("COPY sessions (id, user_id, expires_at) FROM STDIN") as copy:
                for session_id, user_id in sessions:
                    await copy.write_row((session_id, user_id, "infinity"))
            async with cur.copy("COPY refresh_tokens (token_hash, session_id) FROM STDIN") as copy:
                for token_hash, session_id in refresh_rows:
                    await copy.write_row((token_hash, session_id))
        await conn.commit()
    return seeded
