"""Who may call a route: identity from the token and the session actor, then RBAC.

Every route declares one rule in its `opt`, and a route without one is
refused (deny by default):

    opt={"public": True}                       anyone
    opt={"auth": True}                         any signed-in user
    opt={"permission": Permission.X}           a role holding X in the permission map
    opt={"min_role": Role.ADMIN}               that role or above

Authenticating costs no database or Redis round trip while the session
actor's state is trusted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from server.errors import Forbidden, Unauthorized
from server.security.permissions import Permission, Role, has_permission, role_at_least
from server.security.tokens import ExpiredToken, TokenError

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
IDENTITY_KEY = "sevenp.identity"
_BEARER = "bearer "


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    role: Role
    session_id: str
    expires_at: int

    @property
    def expires_at_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.expires_at, tz=dt.UTC)


def rule_of(opt: dict[str, Any]) -> str | None:
    """The kind of rule a route declares, or None when it declares none."""
    for kind in ("public", "auth", "permission", "min_role"):
        if opt.get(kind):
            return kind
    return None


def _token_from(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if header is not None:
        if header[:7].lower() == _BEARER:
            return header[7:].strip()
        return None
    return connection.cookies.get(ACCESS_COOKIE)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    runtime = connection.app.state.runtime
    token = _token_from(connection)
    if not token:
        raise Unauthorized("Access token required", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = runtime.tokens.verify_access(token)
    except ExpiredToken:
        raise Unauthorized(
            "Access token expired",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    except TokenError:
        raise Unauthorized(
            "Invalid access token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    sessions = runtime.sessions
    valid = sessions.check_local(user_id=claims.sub, session_id=claims.sid, issued_at=claims.iat)
    if valid is None:
        valid = await sessions.check_database(
            user_id=claims.sub, session_id=claims.sid, issued_at=claims.iat
        )
    if not valid:
        raise Unauthorized(
            "Session has ended", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    sessions.touch(claims.sid)
    try:
        role = Role(claims.role)
    except ValueError:
        raise Unauthorized("Invalid access token") from None
    return Identity(claims.sub, role, claims.sid, claims.exp)


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
) -> None:
    """The app-wide guard: applies the route's rule, refusing routes without one."""
    opt = route_handler.opt
    if opt.get("public"):
        return
    kind = rule_of(opt)
    if kind is None:
        raise Forbidden("This route grants access to no one")
    identity = await authenticate(connection)
    cast(dict[str, Any], connection.scope)[IDENTITY_KEY] = identity
    if kind == "permission" and not has_permission(identity.role, Permission(opt["permission"])):
        raise Forbidden("Your role does not allow this action")
    if kind == "min_role" and not role_at_least(identity.role, Role(opt["min_role"])):
        raise Forbidden("Your role does not allow this action")


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The identity `authorize` established for this request."""
    identity = cast(dict[str, Any], connection.scope).get(IDENTITY_KEY)
    if not isinstance(identity, Identity):
        raise Unauthorized("Access token required")
    return identity
