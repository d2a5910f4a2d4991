"""Operators' account commands outside the HTTP API: `sevenp create-user`, `unlock-user`,
`set-role` (the way back in when no admin can sign in)."""

from __future__ import annotations

import time

import psycopg

from schemas.users import Role
from server.db.queries import sessions, users
from server.db.unit import Database, UnitOfWork
from server.errors import Conflict, NotFound
from server.security.passwords import password_hasher
from server.services.accounts import keep_an_active_admin
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


async def _user_id(uow: UnitOfWork, email: str) -> str:
    user_id = await uow.value(users.ID_BY_EMAIL, {"email": email.strip()})
    if user_id is None:
        raise NotFound("No account has this email")
    return str(user_id)


async def unlock_user(database: Database, *, email: str) -> str:
    """Reactivate the account and lift a login lockout; return its id."""
    async with database.unit() as uow:
        user_id = await _user_id(uow, email)
        await uow.execute(users.UNLOCK, {"id": user_id})
    return user_id


async def set_role(database: Database, *, email: str, role: Role) -> str:
    """Give the account `role` and end its sessions, so its next token carries the role.

    Refused (Conflict) when it would demote the last active admin. Access tokens already
    issued keep working on running instances until they expire or those instances
    reload the account's standing.
    """
    async with database.unit() as uow:
        user_id = await _user_id(uow, email)
        if role is not Role.ADMIN:
            await keep_an_active_admin(uow, user_id)
        await uow.execute(
            users.UPDATE,
            {
                "id": user_id,
                "first_name": None,
                "last_name": None,
                "profile": None,
                "role": role.value,
                "is_active": None,
            },
        )
        await uow.value(
            sessions.END_ALL_OF_USER, {"user": user_id, "keep": None, "now": time.time()}
        )
    return user_id
