"""Who may call a route: identity from the token and the session actor, then RBAC.

Every route declares one rule in its `opt`, and a route without one is
refused (deny by default):

    opt={"public": True}                       anyone
    opt={"auth": True}                         any signed-in user
    opt={"permission": Permission.X}           a role holding X in the permission map
    opt={"min_role": Role.ADMIN}               that role or above
    opt={"roles": (Role.STUDENT,)}             exactly these roles

Authenticating costs no database or Redis round trip while the session
actor's state is trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, cast

from litestar.connection import ASGIConnection

from server.errors import Forbidden, Unauthorized
from server.security.permissions import Permission, Role, has_permission, role_at_least
from server.security.tokens import ExpiredToken, TokenError

if TYPE_CHECKING:
    from server.runtime import Runtime

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
IDENTITY_KEY = "sevenp.identity"
_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_REFUSED = "Your role does not allow this action"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    role: Role
    session_id: str
    expires_at: int

    @property
    def expires_at_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.expires_at, tz=dt.UTC)


class AccessRefused(Forbidden):
    """The route's rule refuses the caller (a 403 the audit log records)."""

    def __init__(self, message: str, identity: Identity | None) -> None:
        super().__init__(message)
        self.identity = identity


def rule_of(opt: dict[str, Any]) -> str | None:
    """The kind of rule a route declares, or None when it declares none."""
    for kind in ("public", "auth", "permission", "min_role", "roles"):
        if opt.get(kind):
            return kind
    return None


def bearer_token(authorization: bytes | None, cookie: bytes | None) -> str | None:
    """The access token from `Authorization: Bearer`, else from the access cookie."""
    if authorization is not None:
        if authorization[:7].lower() == b"bearer ":
            return authorization[7:].strip().decode("latin-1")
        return None
    if cookie is not None:
        jar: SimpleCookie = SimpleCookie()
        jar.load(cookie.decode("latin-1"))
        morsel = jar.get(ACCESS_COOKIE)
        return morsel.value if morsel is not None else None
    return None


async def authenticate(runtime: Runtime, token: str | None) -> Identity:
    if not token:
        raise Unauthorized("Access token required", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = runtime.verified_tokens.verify(token)
        role = Role(claims.role)
    except ExpiredToken:
        raise Unauthorized("Access token expired", headers=_INVALID) from None
    except (TokenError, ValueError):
        raise Unauthorized("Invalid access token", headers=_INVALID) from None
    sessions = runtime.sessions
    valid = sessions.check_local(user_id=claims.sub, session_id=claims.sid, issued_at=claims.iat)
    if valid is None:
        valid = await sessions.check_database(
            user_id=claims.sub, session_id=claims.sid, issued_at=claims.iat
        )
    if not valid:
        raise Unauthorized("Session has ended", headers=_INVALID)
    sessions.touch(claims.sid)
    return Identity(claims.sub, role, claims.sid, claims.exp)


async def authorize(runtime: Runtime, opt: dict[str, Any], token: str | None) -> Identity | None:
    """Apply the route's rule; the caller's identity, or None on a public route."""
    if opt.get("public"):
        return None
    kind = rule_of(opt)
    if kind is None:
        raise AccessRefused("This route grants access to no one", None)
    identity = await authenticate(runtime, token)
    if kind == "permission" and not has_permission(identity.role, Permission(opt["permission"])):
        raise AccessRefused(_REFUSED, identity)
    if kind == "min_role" and not role_at_least(identity.role, Role(opt["min_role"])):
        raise AccessRefused(_REFUSED, identity)
    if kind == "roles" and identity.role not in opt["roles"]:
        raise AccessRefused(_REFUSED, identity)
    return identity


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The identity the request gate established for this request."""
    identity = cast(dict[str, Any], connection.scope).get(IDENTITY_KEY)
    if not isinstance(identity, Identity):
        raise Unauthorized("Access token required")
    return identity
