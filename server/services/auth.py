"""Authentication flows: register, login with lockout, rotating refresh, logout, one-time tokens.

Most flows run in the caller's unit of work. Login and change-password open short units of
their own from the `Database` around the password check, so no pooled connection waits while
argon2 runs or queues.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import psycopg

from actors.audit import AuditRecord
from schemas.auth import SessionInfo
from schemas.mail import MailMessage
from schemas.problem import FieldError
from schemas.users import Role, User
from server.db import outbox
from server.db.queries import auth as q
from server.db.queries import sessions
from server.db.rows import narrowed
from server.db.unit import Database, UnitOfWork
from server.errors import (
    BadRequest,
    Conflict,
    Locked,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from server.security.passwords import PasswordHasher, PasswordPolicyError, check_password_policy
from server.security.tokens import TokenIssuer, hash_opaque_token, new_opaque_token
from server.services import audit
from server.services.audit import AuditQueue
from server.services.ports import MailWaker
from server.services.revocation import Revocations
from server.services.viewer import Viewer

INVALID_CREDENTIALS = "Invalid email or password"
_NIL_USER = str(uuid.UUID(int=0))


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


class _LoginCandidate(msgspec.Struct):
    user_id: str
    password_hash: str
    is_active: bool
    lock_left: float | None


class _SignedIn(User, kw_only=True):
    session_id: str


class _RefreshTarget(msgspec.Struct):
    session_id: str
    rotated: bool
    user_id: str
    live: bool
    role: Role
    is_active: bool


class _VerificationTarget(msgspec.Struct):
    email: str
    first_name: str
    is_email_verified: bool


class _PasswordContext(msgspec.Struct):
    password_hash: str
    email: str
    first_name: str
    last_name: str


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
        database: Database,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        revocations: Revocations,
        mail: MailWaker,
        audit_queue: AuditQueue,
        policy: AuthPolicy,
    ) -> None:
        self._database = database
        self._hasher = hasher
        self._tokens = tokens
        self._revocations = revocations
        self._mail = mail
        self._audit_queue = audit_queue
        self.policy = policy

    def _refresh_ttl(self, remember_me: bool) -> int:
        if remember_me:
            return self.policy.refresh_ttl_remember_seconds
        return self.policy.refresh_ttl_seconds

    def _session_params(
        self, user_id: str, refresh: str, remember_me: bool, client: ClientInfo
    ) -> dict[str, object]:
        return {
            "user": user_id,
            "ttl": self._refresh_ttl(remember_me),
            "remember": remember_me,
            "ua": (client.user_agent or "")[:512] or None,
            "ip": client.ip,
            "refresh": hash_opaque_token(refresh),
        }

    async def register(
        self,
        uow: UnitOfWork,
        *,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        client: ClientInfo,
    ) -> IssuedTokens:
        enforce_password_policy(
            password, [email.split("@", 1)[0], first_name, last_name], "password"
        )
        password_hash = await self._hasher.hash(password)
        refresh = new_opaque_token()
        verification = new_opaque_token()
        try:
            user = await uow.one(
                q.REGISTER,
                {
                    "email": email.strip(),
                    "hash": password_hash,
                    "first_name": first_name.strip(),
                    "last_name": last_name.strip(),
                },
                User,
            )
        except psycopg.errors.UniqueViolation:
            raise Conflict("An account with this email already exists") from None
        assert user is not None
        session_id = str(
            await uow.value(sessions.OPEN, self._session_params(user.id, refresh, False, client))
        )
        await self._store_one_time(
            uow, user.id, verification, "email_verification", self.policy.verification_token_seconds
        )
        await self._enqueue(
            uow, _verification_mail(user.email, user.first_name), secret=verification
        )
        access, _ = self._tokens.issue_access(
            user_id=user.id, session_id=session_id, role=user.role
        )
        return IssuedTokens(access, refresh, session_id, user)

    async def _enqueue(self, uow: UnitOfWork, message: MailMessage, *, secret: str) -> None:
        await outbox.enqueue(uow, message, secret=secret)
        uow.after_commit(self._wake_mail)

    async def _wake_mail(self) -> None:
        self._mail.poke()

    @staticmethod
    async def _store_one_time(
        uow: UnitOfWork, user_id: str, token: str, purpose: str, ttl_seconds: int
    ) -> None:
        await uow.execute(
            q.STORE_ONE_TIME,
            {
                "hash": hash_opaque_token(token),
                "user": user_id,
                "purpose": purpose,
                "ttl": ttl_seconds,
            },
        )

    async def login(
        self, *, email: str, password: str, remember_me: bool, client: ClientInfo
    ) -> IssuedTokens:
        """Same status and the same work whether or not the account exists."""
        async with self._database.unit() as uow:
            found = await uow.one(q.LOGIN_LOOKUP, {"email": email.strip()}, _LoginCandidate)
        if found is None:
            await self._hasher.verify_dummy(password)
            await self._record_failure(_NIL_USER)
            self._login_failed(None, client, "unknown_account", email)
            raise Unauthorized(INVALID_CREDENTIALS)
        matches = await self._hasher.verify(found.password_hash, password)
        if found.lock_left is not None and found.lock_left > 0:
            self._login_failed(found.user_id, client, "locked", email)
            raise Locked(
                "The account is locked after too many failed logins",
                headers={"Retry-After": str(max(1, math.ceil(found.lock_left)))},
            )
        if not matches or not found.is_active:
            await self._record_failure(found.user_id)
            reason = "wrong_password" if not matches else "inactive_account"
            self._login_failed(found.user_id, client, reason, email)
            raise Unauthorized(INVALID_CREDENTIALS)
        rehash = (
            await self._hasher.hash(password)
            if self._hasher.needs_rehash(found.password_hash)
            else None
        )
        refresh = new_opaque_token()
        params = {**self._session_params(found.user_id, refresh, remember_me, client)}
        params["rehash"] = rehash
        async with self._database.unit() as uow:
            signed_in = await uow.one(q.LOGIN_SUCCESS, params, _SignedIn)
            if signed_in is not None:
                await audit.record(
                    uow,
                    action="auth.login",
                    actor_id=found.user_id,
                    address=client.ip,
                    target_type="session",
                    target_id=signed_in.session_id,
                    details={"rememberMe": remember_me},
                )
        if signed_in is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        user = narrowed(signed_in, User)
        access, _ = self._tokens.issue_access(
            user_id=user.id, session_id=signed_in.session_id, role=user.role
        )
        return IssuedTokens(access, refresh, signed_in.session_id, user)

    def _login_failed(
        self, user_id: str | None, client: ClientInfo, reason: str, email: str
    ) -> None:
        self._audit_queue.submit(
            AuditRecord(
                action="auth.login",
                outcome="failure",
                actor_id=user_id,
                address=client.ip,
                target_type="user" if user_id else None,
                target_id=user_id,
                details={"reason": reason, "email": email.strip()[:320]},
            )
        )

    async def _record_failure(self, user_id: str) -> None:
        async with self._database.unit() as uow:
            await uow.execute(
                q.RECORD_FAILURE,
                {
                    "user": user_id,
                    "max": self.policy.max_failed_logins,
                    "lock": self.policy.lock_seconds,
                },
            )

    async def refresh(self, refresh_token: str, client: ClientInfo) -> IssuedTokens:
        """Rotate the refresh token; presenting a rotated one ends the whole session.

        Its own unit: the end of a reused token's session must commit although the
        request is refused.
        """
        token_hash = hash_opaque_token(refresh_token)
        new_refresh = new_opaque_token()
        async with self._database.unit() as uow:
            target = await uow.one(sessions.REFRESH_LOOKUP, {"hash": token_hash}, _RefreshTarget)
            if target is None:
                raise Unauthorized("Invalid refresh token")
            if target.rotated:
                await self._revocations.end_session(uow, target.session_id)
                await audit.record(
                    uow,
                    action="auth.refresh_reuse",
                    outcome="denied",
                    actor_id=target.user_id,
                    address=client.ip,
                    target_type="session",
                    target_id=target.session_id,
                    details={"sessionEnded": True},
                )
            elif not target.live or not target.is_active:
                raise Unauthorized("Invalid refresh token")
            else:
                await uow.execute(
                    sessions.ROTATE_REFRESH,
                    {
                        "old": token_hash,
                        "new": hash_opaque_token(new_refresh),
                        "session": target.session_id,
                    },
                )
        if target.rotated:
            raise Unauthorized("Refresh token reuse detected; the session has been ended")
        access, _ = self._tokens.issue_access(
            user_id=target.user_id, session_id=target.session_id, role=target.role
        )
        return IssuedTokens(access, new_refresh, target.session_id)

    async def logout(self, uow: UnitOfWork, viewer: Viewer, session_id: str) -> None:
        await self._revocations.end_session(uow, session_id)
        await audit.record(
            uow,
            action="auth.logout",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="session",
            target_id=session_id,
        )

    async def logout_all(self, uow: UnitOfWork, viewer: Viewer) -> None:
        await self._revocations.end_all_sessions(uow, viewer.user_id)
        await audit.record(
            uow,
            action="auth.logout_all",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="user",
            target_id=viewer.user_id,
        )

    async def sessions(
        self, uow: UnitOfWork, user_id: str, current_session: str
    ) -> list[SessionInfo]:
        return await uow.all(
            sessions.LIVE_OF_USER, {"user": user_id, "current": current_session}, SessionInfo
        )

    async def end_session_of(
        self, uow: UnitOfWork, session_id: str, *, user_id: str, is_admin: bool
    ) -> None:
        """End a session the caller owns (or any, for an admin); others are not found."""
        owner = await uow.value(sessions.OWNER_OF_LIVE, {"id": session_id})
        if owner is None or (owner != user_id and not is_admin):
            raise NotFound("Session not found")
        await self._revocations.end_session(uow, session_id)

    async def forgot_password(self, uow: UnitOfWork, email: str) -> None:
        """One statement, whether or not the account exists: same status, same time."""
        token = new_opaque_token()
        await uow.value(
            q.ISSUE_ONE_TIME_BY_EMAIL,
            {
                "email": email.strip(),
                "hash": hash_opaque_token(token),
                "purpose": "password_reset",
                "ttl": self.policy.reset_token_seconds,
                "subject": "Reset your 7P password",
                "body": _reset_body(self.policy.reset_token_seconds),
                "secret": token,
            },
        )
        uow.after_commit(self._wake_mail)

    async def reset_password(
        self, uow: UnitOfWork, token: str, new_password: str, client: ClientInfo
    ) -> None:
        enforce_password_policy(new_password, [], "newPassword")
        password_hash = await self._hasher.hash(new_password)
        user_id = await self._consume(uow, token, "password_reset")
        await uow.execute(q.SET_PASSWORD, {"hash": password_hash, "unlock": True, "user": user_id})
        await self._revocations.end_all_sessions(uow, user_id)
        await audit.record(
            uow,
            action="user.password_reset",
            actor_id=user_id,
            address=client.ip,
            target_type="user",
            target_id=user_id,
            details={"sessionsEnded": True},
        )

    async def verify_email(self, uow: UnitOfWork, token: str) -> None:
        user_id = await self._consume(uow, token, "email_verification")
        await uow.execute(q.MARK_EMAIL_VERIFIED, {"user": user_id})

    @staticmethod
    async def _consume(uow: UnitOfWork, token: str, purpose: str) -> str:
        user_id = await uow.value(
            q.CONSUME_ONE_TIME, {"hash": hash_opaque_token(token), "purpose": purpose}
        )
        if user_id is None:
            raise BadRequest("The token is invalid, expired or already used")
        return str(user_id)

    async def resend_verification(self, uow: UnitOfWork, user_id: str) -> None:
        target = await uow.one(q.VERIFICATION_TARGET, {"user": user_id}, _VerificationTarget)
        if target is None:
            raise NotFound("User not found")
        if target.is_email_verified:
            return
        token = new_opaque_token()
        await self._store_one_time(
            uow, user_id, token, "email_verification", self.policy.verification_token_seconds
        )
        await self._enqueue(uow, _verification_mail(target.email, target.first_name), secret=token)

    async def change_password(
        self, *, viewer: Viewer, session_id: str, current: str, new: str, confirm: str
    ) -> None:
        user_id = viewer.user_id
        if new != confirm:
            raise ValidationFailed(
                "The passwords do not match",
                details=[FieldError(field="confirmPassword", message="Does not match newPassword")],
            )
        async with self._database.unit() as uow:
            context = await uow.one(q.PASSWORD_CONTEXT, {"user": user_id}, _PasswordContext)
        if context is None:
            raise NotFound("User not found")
        if not await self._hasher.verify(context.password_hash, current):
            raise Unauthorized("The current password is wrong")
        enforce_password_policy(
            new,
            [context.email.split("@", 1)[0], context.first_name, context.last_name],
            "newPassword",
        )
        password_hash = await self._hasher.hash(new)
        async with self._database.unit() as uow:
            await uow.execute(
                q.SET_PASSWORD, {"hash": password_hash, "unlock": False, "user": user_id}
            )
            await self._revocations.end_all_sessions(uow, user_id, keep_session=session_id)
            await audit.record(
                uow,
                action="user.password_change",
                actor_id=user_id,
                address=viewer.address,
                target_type="user",
                target_id=user_id,
                details={"otherSessionsEnded": True},
            )


def _verification_mail(email: str, first_name: str) -> MailMessage:
    """The token is filled in at sending (`outbox.SECRET_PLACEHOLDER`)."""
    return MailMessage(
        recipient=email,
        subject="Verify your 7P email address",
        body=(
            f"Hello {first_name},\n\nConfirm your email address with this token"
            f" (valid for 24 hours, once):\n\n{outbox.SECRET_PLACEHOLDER}\n\n"
            'Send it to POST /api/auth/verify-email as {"token": "..."}.\n'
        ),
    )


def _reset_body(ttl_seconds: int) -> str:
    """`{name}` is filled in by the statement, the token at sending."""
    minutes = ttl_seconds // 60
    return (
        "Hello {name},\n\nA password reset was requested for your 7P account. Use this token"
        f" within {minutes} minutes, once:\n\n{outbox.SECRET_PLACEHOLDER}\n\n"
        "Send it with your new password to POST /api/auth/reset-password.\n"
        "If you did not ask for this, ignore this mail.\n"
    )
