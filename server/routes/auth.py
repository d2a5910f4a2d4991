"""`/api/auth`: register, login, refresh, logout, sessions and one-time tokens."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from schemas.auth import (
    Accepted,
    AuthResult,
    ForgotPasswordRequest,
    LoginRequest,
    Me,
    RefreshRequest,
    RefreshResult,
    RegisterRequest,
    ResetPasswordRequest,
    SessionInfo,
    VerifyEmailRequest,
)
from server.db.unit import UnitOfWork
from server.errors import Unauthorized
from server.http.access import ACCESS_COOKIE, REFRESH_COOKIE, Identity
from server.http.client import client_address
from server.http.idempotency import Idempotency
from server.security.permissions import Role
from server.security.tokens import TokenIssuer
from server.services.auth import Authentication, ClientInfo, IssuedTokens
from server.services.viewer import Viewer
from server.settings import Settings

AnyRequest = Request[Any, Any, Any]
_REFRESH_PATH = "/api/auth"


def _client(request: AnyRequest, settings: NamedDependency[Settings]) -> ClientInfo:
    return ClientInfo(
        user_agent=request.headers.get("user-agent"),
        ip=client_address(request.scope, settings.trusted_proxies),
    )


class _CookieJar:
    """The access and refresh cookies a sign-in or a refresh sets."""

    def __init__(
        self,
        settings: NamedDependency[Settings],
        tokens: NamedDependency[TokenIssuer],
        auth: NamedDependency[Authentication],
    ) -> None:
        self.secure = not settings.is_development
        self.access_ttl = tokens.access_ttl_seconds
        self.refresh_ttl = auth.policy.refresh_ttl_remember_seconds

    def cookies(self, issued: IssuedTokens) -> list[Cookie]:
        return [
            Cookie(
                key=ACCESS_COOKIE,
                value=issued.access_token,
                httponly=True,
                secure=self.secure,
                samesite="strict",
                path="/",
                max_age=self.access_ttl,
            ),
            Cookie(
                key=REFRESH_COOKIE,
                value=issued.refresh_token,
                httponly=True,
                secure=self.secure,
                samesite="strict",
                path=_REFRESH_PATH,
                max_age=self.refresh_ttl,
            ),
        ]

    def signed_in(self, issued: IssuedTokens, *, status_code: int) -> Response[AuthResult]:
        assert issued.user is not None
        body = AuthResult(
            token=issued.access_token, refresh_token=issued.refresh_token, user=issued.user
        )
        return Response(body, status_code=status_code, cookies=self.cookies(issued))


def _expired_cookies() -> list[Cookie]:
    return [
        Cookie(key=ACCESS_COOKIE, value="", path="/", max_age=0, httponly=True),
        Cookie(key=REFRESH_COOKIE, value="", path=_REFRESH_PATH, max_age=0, httponly=True),
    ]


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/register", opt={"public": True, "rate_limit": "auth"}, status_code=201)
    async def register(
        self,
        request: AnyRequest,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
        tokens: NamedDependency[TokenIssuer],
        idempotency: NamedDependency[Idempotency],
        data: JSONBody[RegisterRequest],
    ) -> Response[AuthResult]:
        """Create an account.

        The new account is a student; it is signed in at once (access and refresh tokens, also
        as cookies) and a verification mail is sent. An email already in use is a 409.
        """
        issued = await auth.register(
            uow,
            email=data.email,
            password=data.password,
            first_name=data.first_name,
            last_name=data.last_name,
            client=_client(request, settings),
        )
        return await idempotency.keep(
            _CookieJar(settings, tokens, auth).signed_in(issued, status_code=201)
        )

    @post("/login", opt={"public": True, "rate_limit": "auth"}, status_code=200)
    async def login(
        self,
        request: AnyRequest,
        auth: NamedDependency[Authentication],
        settings: NamedDependency[Settings],
        tokens: NamedDependency[TokenIssuer],
        data: JSONBody[LoginRequest],
    ) -> Response[AuthResult]:
        """Sign in with email and password.

        Bad credentials are a 401 with one generic message; a locked account is a 423 with
        Retry-After.
        """
        issued = await auth.login(
            email=data.email,
            password=data.password,
            remember_me=data.remember_me,
            client=_client(request, settings),
        )
        return _CookieJar(settings, tokens, auth).signed_in(issued, status_code=200)

    @post("/refresh", opt={"public": True}, status_code=200)
    async def refresh(
        self,
        request: AnyRequest,
        auth: NamedDependency[Authentication],
        settings: NamedDependency[Settings],
        tokens: NamedDependency[TokenIssuer],
        data: JSONBody[RefreshRequest | None] = None,
    ) -> Response[RefreshResult]:
        """Rotate a refresh token.

        From the body or the refresh cookie; presenting an already-rotated token is a 401 and
        ends the whole session.
        """
        token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise Unauthorized("Refresh token required")
        issued = await auth.refresh(token, _client(request, settings))
        body = RefreshResult(access_token=issued.access_token, refresh_token=issued.refresh_token)
        return Response(body, cookies=_CookieJar(settings, tokens, auth).cookies(issued))

    @get("/me", opt={"auth": True})
    async def me(self, identity: NamedDependency[Identity]) -> Me:
        """The caller's identity.

        From the verified token and the session actor alone: no database round trip.
        """
        return Me(
            user_id=identity.user_id,
            role=identity.role,
            session_id=identity.session_id,
            expires_at=identity.expires_at_datetime,
        )

    @post("/logout", opt={"auth": True}, status_code=HTTP_204_NO_CONTENT)
    async def logout(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
        viewer: NamedDependency[Viewer],
    ) -> Response[None]:
        """End this session.

        The access token and its refresh token stop working at once.
        """
        await auth.logout(uow, viewer, identity.session_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=_expired_cookies())

    @post("/logout-all", opt={"auth": True}, status_code=HTTP_204_NO_CONTENT)
    async def logout_all(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
    ) -> Response[None]:
        """End every session of the caller."""
        await auth.logout_all(uow, viewer)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=_expired_cookies())

    @get("/sessions", opt={"auth": True})
    async def sessions(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> list[SessionInfo]:
        """The caller's live sessions."""
        return await auth.sessions(uow, identity.user_id, identity.session_id)

    @delete("/sessions/{session_id:uuid}", opt={"auth": True}, status_code=HTTP_204_NO_CONTENT)
    async def end_session(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
        session_id: FromPath[uuid.UUID],
    ) -> None:
        """End one session.

        The caller's own, or any for an admin.
        """
        await auth.end_session_of(
            uow, str(session_id), user_id=identity.user_id, is_admin=identity.role is Role.ADMIN
        )

    @post(
        "/forgot-password",
        opt={"public": True, "rate_limit": "auth"},
        status_code=HTTP_202_ACCEPTED,
    )
    async def forgot_password(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        data: JSONBody[ForgotPasswordRequest],
    ) -> Accepted:
        """Ask for a password reset mail.

        202 whether or not the account exists.
        """
        await auth.forgot_password(uow, data.email)
        return Accepted(message="If the account exists, a reset mail is on its way")

    @post(
        "/reset-password",
        opt={"public": True, "rate_limit": "auth"},
        status_code=HTTP_204_NO_CONTENT,
    )
    async def reset_password(
        self,
        request: AnyRequest,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        settings: NamedDependency[Settings],
        data: JSONBody[ResetPasswordRequest],
    ) -> None:
        """Set a new password with a reset token.

        The token works once and for 10 minutes; every session ends.
        """
        await auth.reset_password(uow, data.token, data.new_password, _client(request, settings))

    @post("/verify-email", opt={"public": True}, status_code=HTTP_204_NO_CONTENT)
    async def verify_email(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        data: JSONBody[VerifyEmailRequest],
    ) -> None:
        """Verify the account's email with a verification token.

        The token works once and for 24 hours.
        """
        await auth.verify_email(uow, data.token)

    @post("/resend-verification", opt={"auth": True}, status_code=HTTP_202_ACCEPTED)
    async def resend_verification(
        self,
        auth: NamedDependency[Authentication],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> Accepted:
        """Send the verification mail again.

        Nothing is sent for an account already verified.
        """
        await auth.resend_verification(uow, identity.user_id)
        return Accepted(message="A verification mail is on its way unless already verified")
