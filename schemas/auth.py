"""Authentication bodies: register, login, refresh, sessions and one-time tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from schemas.base import END, ApiBody, ApiResponse
from schemas.users import Email, PersonName, Role, User

# Any characters: a password is hashed, never stored or sent; the policy for new ones
# (length, spaces, control characters, common passwords) is the service's, with reasons.
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
OpaqueToken = Annotated[
    str, msgspec.Meta(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9_\-]+" + END)
]


class RegisterRequest(ApiBody):
    email: Email
    password: Password
    first_name: PersonName
    last_name: PersonName


class LoginRequest(ApiBody):
    email: Email
    password: Password
    remember_me: bool = False


class RefreshRequest(ApiBody):
    refresh_token: OpaqueToken | None = None


class AuthResult(ApiResponse):
    token: str
    refresh_token: str
    user: User


class RefreshResult(ApiResponse):
    access_token: str
    refresh_token: str


class Me(ApiResponse):
    user_id: str
    role: Role
    session_id: str
    expires_at: dt.datetime


class SessionInfo(ApiResponse):
    id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    user_agent: str | None
    ip: str | None
    current: bool


class ForgotPasswordRequest(ApiBody):
    email: Email


class ResetPasswordRequest(ApiBody):
    token: OpaqueToken
    new_password: Password


class VerifyEmailRequest(ApiBody):
    token: OpaqueToken


class ChangePasswordRequest(ApiBody):
    current_password: Password
    new_password: Password
    confirm_password: Password


class Accepted(ApiResponse):
    message: str
