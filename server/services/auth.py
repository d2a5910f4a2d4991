"""Authentication flows: register, login with lockout, rotating refresh, logout, one-time tokens."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from actors.mail import MailActor
from schemas.auth import SessionInfo
from schemas.problem import FieldError
from schemas.users import User
from server.db.pool import Pool
from server.errors import (
    BadRequest,
    Conflict,
    Locked,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from server.mail.outbox import enqueue_mail
from server.mail.senders import MailMessage
from server.security.passwords import PasswordHasher, PasswordPolicyError, check_password_policy
from server.security.tokens import TokenIssuer, hash_opaque_token, new_opaque_token
from server.services.accounts import USER_COLUMNS, user_from_row
from server.services.revocation import Revocations

INVALID_CREDENTIALS = "Invalid email or password"
_NIL_USER = str(uuid.UUID(int=0))
_SESSION_COLUMNS = "id::text, created_at, last_seen_at, user_agent, ip"

_OPEN_SESSION = (
    "WITH s AS (INSERT INTO sessions (user_id, expires_at, remember_me, user_agent, ip)"
    "   VALUES (%(user)s, now() + %(ttl)s * interval '1 second', %(remember)s, %(ua)s, %(ip)s)"
    "   RETURNING id),"
    " r AS (INSERT INTO refresh_tokens (token_hash, session_id)"
    "   SELECT %(refresh)s, id FROM s)"
    " SELECT id::text FROM s"
)

_RECORD_FAILURE = (
    "UPDATE users SET"
    " login_attempts = CASE WHEN lock_until IS NOT NULL AND lock_until <= now() THEN 1"
    "   ELSE login_attempts + 1 END,"
    " lock_until = CASE WHEN lock_until IS NOT NULL AND lock_until <= now() THEN NULL"
    "   WHEN login_attempts + 1 >= %(max)s THEN now() + %(lock)s * interval '1 second'"
    "   ELSE lock_until END"
    " WHERE id = %(user)s"
)

_LOGIN_SUCCESS = (
    "WITH u AS (UPDATE users SET login_attempts = 0, lock_until = NULL, last_login_at = now(),"
    "   password_hash = coalesce(%(rehash)s, password_hash) WHERE id = %(user)s"
    f"   RETURNING {USER_COLUMNS}),"
    " s AS (INSERT INTO sessions (user_id, expires_at, remember_me, user_agent, ip)"
    "   SELECT %(user)s, now() + %(ttl)s * interval '1 second', %(remember)s, %(ua)s, %(ip)s"
    "   FROM u RETURNING id),"
    " r AS (INSERT INTO refresh_tokens (token_hash, session_id) SELECT %(refresh)s, id FROM s)"
    " SELECT u.*, s.id::text FROM u, s"
)

_ISSUE_ONE_TIME = (
    "WITH u AS (SELECT id, email, first_name FROM users WHERE lower(email) = lower(%(email)s)"
    "   AND is_active),"
    " t AS (INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at)"
    "   SELECT %(hash)s, id, %(purpose)s, now() + %(ttl)s * interval '1 second' FROM u"
    "   RETURNING user_id),"
    " m AS (INSERT INTO mail_outbox (recipient, subject, body)"
    "   SELECT email, %(subject)s, replace(%(body)s, '{name}', first_name) FROM u RETURNING id)"
    " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM m)"
)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    refresh_ttl_seconds: int = 7 * 24 * 3600
    refresh_ttl_remember_seconds: int = 30 * 24 * 3600
    max_failed_logins: int = 5
    lock_seconds: int = 2 * 3600
    reset_token_seconds: int = 600
    verification_token_seconds: int = 24 * 3600


@dataclass(frozen=True, slots=True)
class ClientInfo:
    user_agent: str | None
    ip: str | None


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    session_id: str
    user: User | None = None


def enforce_password_policy(password: str, context: Sequence[str], field: str) -> None:
    try:
        check_password_policy(password, context=context)
    except PasswordPolicyError as exc:
        raise ValidationFailed(
            "The password does not meet the password policy",
            details=[FieldError(field=field, message=reason) for reason in exc.reasons],
        ) from None


class Authentication:
    def __init__(
        self,
        *,
        pool: Pool,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        revocations: Revocations,
        mail: MailActor,
        policy: AuthPolicy,
    ) -> None:
        self._pool = pool
        self._hasher = hasher
        self._tokens = tokens
        self._revocations = revocations
        self._mail = mail
        self.policy = policy

    def _refresh_ttl(self, remember_me: bool) -> int:
        if remember_me:
            return self.policy.refresh_ttl_remember_seconds
        return self.policy.refresh_ttl_seconds

    async def register(
        self, *, email: str, password: str, first_name: str, last_name: str, client: ClientInfo
    ) -> IssuedTokens:
        enforce_password_policy(
            password, [email.split("@", 1)[0], first_name, last_name], "password"
        )
        password_hash = await self._hasher.hash(password)
        refresh = new_opaque_token()
        verification = new_opaque_token()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO users (email, password_hash, first_name, last_name)"
                    f" VALUES (%s, %s, %s, %s) RETURNING {USER_COLUMNS}",
                    (email.strip(), password_hash, first_name.strip(), last_name.strip()),
                )
                row = await cur.fetchone()
                assert row is not None
                user = user_from_row(row)
                session_id = await self._open_session(conn, user.id, refresh, False, client)
                await self._store_one_time(
                    conn,
                    user.id,
                    verification,
                    "email_verification",
                    self.policy.verification_token_seconds,
                )
                await enqueue_mail(
                    conn, _verification_mail(user.email, user.first_name, verification)
                )
        except psycopg.errors.UniqueViolation:
            raise Conflict("An account with this email already exists") from None
        self._mail.poke()
        access, _ = self._tokens.issue_access(
            user_id=user.id, session_id=session_id, role=user.role
        )
        return IssuedTokens(access, refresh, session_id, user)

    async def _open_session(
        self, conn: Any, user_id: str, refresh: str, remember_me: bool, client: ClientInfo
    ) -> str:
        cur = await conn.execute(
            _OPEN_SESSION,
            {
                "user": user_id,
                "ttl": self._refresh_ttl(remember_me),
                "remember": remember_me,
                "ua": (client.user_agent or "")[:512] or None,
                "ip": client.ip,
                "refresh": hash_opaque_token(refresh),
            },
        )
        row = await cur.fetchone()
        assert row is not None
        return str(row[0])

    @staticmethod
    async def _store_one_time(
        conn: Any, user_id: str, token: str, purpose: str, ttl_seconds: int
    ) -> None:
        await conn.execute(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at)"
            " VALUES (%s, %s, %s, now() + %s * interval '1 second')",
            (hash_opaque_token(token), user_id, purpose, ttl_seconds),
        )

    async def login(
        self, *, email: str, password: str, remember_me: bool, client: ClientInfo
    ) -> IssuedTokens:
        """Same status and the same work whether or not the account exists."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id::text, password_hash, is_active, lock_until,"
                " greatest(0, extract(epoch FROM lock_until - now()))::float8"
                " FROM users WHERE lower(email) = lower(%s)",
                (email.strip(),),
                prepare=True,
            )
            row = await cur.fetchone()
        if row is None:
            await self._hasher.verify_dummy(password)
            await self._record_failure(_NIL_USER)
            raise Unauthorized(INVALID_CREDENTIALS)
        user_id, stored_hash, is_active, lock_until, lock_left = row
        matches = await self._hasher.verify(stored_hash, password)
        if lock_until is not None and lock_left > 0:
            raise Locked(
                "The account is locked after too many failed logins",
                headers={"Retry-After": str(max(1, math.ceil(lock_left)))},
            )
        if not matches or not is_active:
            await self._record_failure(user_id)
            raise Unauthorized(INVALID_CREDENTIALS)
        rehash = (
            await self._hasher.hash(password) if self._hasher.needs_rehash(stored_hash) else None
        )
        refresh = new_opaque_token()
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                _LOGIN_SUCCESS,
                {
                    "user": user_id,
                    "rehash": rehash,
                    "ttl": self._refresh_ttl(remember_me),
                    "remember": remember_me,
                    "ua": (client.user_agent or "")[:512] or None,
                    "ip": client.ip,
                    "refresh": hash_opaque_token(refresh),
                },
            )
            result = await cur.fetchone()
        if result is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        user = user_from_row(result)
        session_id = str(result[-1])
        access, _ = self._tokens.issue_access(
            user_id=user.id, session_id=session_id, role=user.role
        )
        return IssuedTokens(access, refresh, session_id, user)

    async def _record_failure(self, user_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _RECORD_FAILURE,
                {
                    "user": user_id,
                    "max": self.policy.max_failed_logins,
                    "lock": self.policy.lock_seconds,
                },
                prepare=True,
            )

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """Rotate the refresh token; presenting a rotated one ends the whole session."""
        token_hash = hash_opaque_token(refresh_token)
        new_refresh = new_opaque_token()
        reused: tuple[str, str] | None = None
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT rt.session_id::text, rt.rotated_at IS NOT NULL, s.user_id::text,"
                " s.revoked_at IS NULL AND s.expires_at > now(), u.role, u.is_active"
                " FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id"
                " JOIN users u ON u.id = s.user_id WHERE rt.token_hash = %s FOR UPDATE OF rt",
                (token_hash,),
            )
            row = await cur.fetchone()
            if row is None:
                raise Unauthorized("Invalid refresh token")
            session_id, rotated, user_id, live, role, is_active = row
            if rotated:
                reused = (session_id, user_id)
            elif not live or not is_active:
                raise Unauthorized("Invalid refresh token")
            else:
                await conn.execute(
                    "WITH old AS (UPDATE refresh_tokens SET rotated_at = now()"
                    "   WHERE token_hash = %s)"
                    " INSERT INTO refresh_tokens (token_hash, session_id) VALUES (%s, %s)",
                    (token_hash, hash_opaque_token(new_refresh), session_id),
                )
        if reused is not None:
            await self._revocations.end_session(reused[0])
            raise Unauthorized("Refresh token reuse detected; the session has been ended")
        access, _ = self._tokens.issue_access(user_id=user_id, session_id=session_id, role=role)
        return IssuedTokens(access, new_refresh, session_id)

    async def logout(self, session_id: str) -> None:
        await self._revocations.end_session(session_id)

    async def logout_all(self, user_id: str) -> None:
        await self._revocations.end_all_sessions(user_id)

    async def sessions(self, user_id: str, current_session: str) -> list[SessionInfo]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = %s"
                " AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC",
                (user_id,),
            )
            rows = await cur.fetchall()
        return [
            SessionInfo(
                id=r[0],
                created_at=r[1],
                last_seen_at=r[2],
                user_agent=r[3],
                ip=r[4],
                current=r[0] == current_session,
            )
            for r in rows
        ]

    async def end_session_of(self, session_id: str, *, user_id: str, is_admin: bool) -> None:
        """End a session the caller owns (or any, for an admin); others are not found."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id::text FROM sessions WHERE id = %s AND revoked_at IS NULL",
                (session_id,),
            )
            row = await cur.fetchone()
        if row is None or (row[0] != user_id and not is_admin):
            raise NotFound("Session not found")
        await self._revocations.end_session(session_id)

    async def forgot_password(self, email: str) -> None:
        """One statement, whether or not the account exists: same status, same time."""
        token = new_opaque_token()
        async with self._pool.connection() as conn:
            await conn.execute(
                _ISSUE_ONE_TIME,
                {
                    "email": email.strip(),
                    "hash": hash_opaque_token(token),
                    "purpose": "password_reset",
                    "ttl": self.policy.reset_token_seconds,
                    "subject": "Reset your 7P password",
                    "body": _reset_body(token, self.policy.reset_token_seconds),
                },
                prepare=True,
            )
        self._mail.poke()

    async def reset_password(self, token: str, new_password: str) -> None:
        enforce_password_policy(new_password, [], "newPassword")
        password_hash = await self._hasher.hash(new_password)
        async with self._pool.connection() as conn, conn.transaction():
            user_id = await self._consume(conn, token, "password_reset")
            await conn.execute(
                "UPDATE users SET password_hash = %s, password_changed_at = now(),"
                " login_attempts = 0, lock_until = NULL, updated_at = now() WHERE id = %s",
                (password_hash, user_id),
            )
            valid_after, ended = await self._revocations.end_all_in(conn, user_id)
        await self._revocations.announce(user_id, valid_after, ended)

    async def verify_email(self, token: str) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            user_id = await self._consume(conn, token, "email_verification")
            await conn.execute(
                "UPDATE users SET is_email_verified = true, updated_at = now() WHERE id = %s",
                (user_id,),
            )

    @staticmethod
    async def _consume(conn: Any, token: str, purpose: str) -> str:
        cur = await conn.execute(
            "UPDATE one_time_tokens SET used_at = now() WHERE token_hash = %s AND purpose = %s"
            " AND used_at IS NULL AND expires_at > now() RETURNING user_id::text",
            (hash_opaque_token(token), purpose),
        )
        row = await cur.fetchone()
        if row is None:
            raise BadRequest("The token is invalid, expired or already used")
        return str(row[0])

    async def resend_verification(self, user_id: str) -> None:
        token = new_opaque_token()
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT email, first_name, is_email_verified FROM users WHERE id = %s",
                (user_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("User not found")
            email, first_name, verified = row
            if verified:
                return
            await self._store_one_time(
                conn, user_id, token, "email_verification", self.policy.verification_token_seconds
            )
            await enqueue_mail(conn, _verification_mail(email, first_name, token))
        self._mail.poke()

    async def change_password(
        self, *, user_id: str, session_id: str, current: str, new: str, confirm: str
    ) -> None:
        if new != confirm:
            raise ValidationFailed(
                "The passwords do not match",
                details=[FieldError(field="confirmPassword", message="Does not match newPassword")],
            )
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT password_hash, email, first_name, last_name FROM users WHERE id = %s",
                (user_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        if not await self._hasher.verify(row[0], current):
            raise Unauthorized("The current password is wrong")
        enforce_password_policy(new, [row[1].split("@", 1)[0], row[2], row[3]], "newPassword")
        password_hash = await self._hasher.hash(new)
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE users SET password_hash = %s, password_changed_at = now(),"
                " updated_at = now() WHERE id = %s",
                (password_hash, user_id),
            )
            valid_after, ended = await self._revocations.end_all_in(
                conn, user_id, keep_session=session_id
            )
        await self._revocations.announce(user_id, valid_after, ended)


def _verification_mail(email: str, first_name: str, token: str) -> MailMessage:
    return MailMessage(
        recipient=email,
        subject="Verify your 7P email address",
        body=(
            f"Hello {first_name},\n\nConfirm your email address with this token"
            f" (valid for 24 hours, once):\n\n{token}\n\n"
            'Send it to POST /api/auth/verify-email as {"token": "..."}.\n'
        ),
    )


def _reset_body(token: str, ttl_seconds: int) -> str:
    minutes = ttl_seconds // 60
    return (
        "Hello {name},\n\nA password reset was requested for your 7P account. Use this token"
        f" within {minutes} minutes, once:\n\n{token}\n\n"
        "Send it with your new password to POST /api/auth/reset-password.\n"
        "If you did not ask for this, ignore this mail.\n"
    )
