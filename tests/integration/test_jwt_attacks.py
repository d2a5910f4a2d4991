"""Forged, altered and misused tokens are all refused with 401 (RFC 8725)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.support.accounts import register
from tests.support.live_server import TEST_JWT_SECRET


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str, session_id: str, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "sevenp",
        "aud": "sevenp-api",
        "sub": user_id,
        "sid": session_id,
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "jti": "x",
        "typ": "access",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict[str, object], *, typ: str = "at+jwt") -> str:
    return jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256", headers={"typ": typ})


async def _context(http: httpx.AsyncClient) -> tuple[str, str, str]:
    account = await register(http)
    me = (await http.get("/api/auth/me", headers=account.auth)).json()
    return account.token, me["userId"], me["sessionId"]


async def _status(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_genuine_token_passes(http: httpx.AsyncClient) -> None:
    token, user_id, session_id = await _context(http)
    assert await _status(http, token) == 200
    assert await _status(http, _signed(_claims(user_id, session_id, role="student"))) == 200


@pytest.mark.parametrize(
    "attack",
    [
        "alg_none",
        "missing_exp",
        "expired",
        "wrong_aud",
        "wrong_iss",
        "tampered",
        "typ_refresh",
        "header_typ_jwt",
        "wrong_secret",
        "hs512",
        "refresh_as_access",
        "garbage",
    ],
)
async def test_attacks_are_refused(http: httpx.AsyncClient, attack: str) -> None:
    token, user_id, session_id = await _context(http)
    refresh_token = ""
    if attack == "refresh_as_access":
        refresh_token = (await register(http)).refresh_token
    header, _payload, signature = token.split(".")
    forged = {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}."
        f"{_b64(_claims(user_id, session_id))}.",
        "missing_exp": _signed(_claims(user_id, session_id, exp=None)),
        "expired": _signed(
            _claims(user_id, session_id, iat=int(time.time()) - 2000, exp=int(time.time()) - 1000)
        ),
        "wrong_aud": _signed(_claims(user_id, session_id, aud="another-api")),
        "wrong_iss": _signed(_claims(user_id, session_id, iss="someone-else")),
        "tampered": f"{header}.{_b64(_claims(user_id, session_id, role='admin'))}.{signature}",
        "typ_refresh": _signed(_claims(user_id, session_id, typ="refresh")),
        "header_typ_jwt": _signed(_claims(user_id, session_id), typ="JWT"),
        "wrong_secret": jwt.encode(
            _claims(user_id, session_id), "x" * 48, algorithm="HS256", headers={"typ": "at+jwt"}
        ),
        "hs512": jwt.encode(
            _claims(user_id, session_id),
            TEST_JWT_SECRET,
            algorithm="HS512",
            headers={"typ": "at+jwt"},
        ),
        "refresh_as_access": refresh_token,
        "garbage": "not.a.token",
    }[attack]
    assert await _status(http, forged) == 401
