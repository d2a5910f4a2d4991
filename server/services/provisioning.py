"""Creating accounts outside the HTTP API, for operators (`sevenp create-user`)."""

from __future__ import annotations

import psycopg

from server.errors import Conflict
from server.security.passwords import password_hasher
from server.services.auth import enforce_password_policy
from server.settings import Settings


async def create_user(
    database_url: str,
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    role: str,
    settings: Settings,
) -> str:
    """Create a verified, active account with any role; return its id."""
    enforce_password_policy(password, [email.split("@", 1)[0], first_name, last_name], "password")
    password_hash = await password_hasher(settings, max_concurrency=1).hash(password)
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            cur = await conn.execute(
                "INSERT INTO users (email, password_hash, first_name, last_name, role,"
                " is_email_verified) VALUES (%s, %s, %s, %s, %s, true) RETURNING id::text",
                (email.strip(), password_hash, first_name.strip(), last_name.strip(), role),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise Conflict("An account with this email already exists") from None
    assert row is not None
    return str(row[0])
