"""A write authenticated by the access cookie must come from this site or an allowed origin."""

from __future__ import annotations

import httpx
import pytest

from tests.support.accounts import Account, register
from tests.support.live_server import LiveServer


def _cookie(account: Account) -> dict[str, str]:
    return {"cookie": f"access_token={account.token}"}


async def _still_signed_in(http: httpx.AsyncClient, account: Account) -> bool:
    return (await http.get("/api/auth/me", headers=account.auth)).status_code == 200


@pytest.mark.parametrize(
    "source",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/page"},
        {},
    ],
    ids=["foreign-origin", "null-origin", "foreign-referer", "neither"],
)
async def test_a_cookie_write_from_elsewhere_is_403_and_changes_nothing(
    http: httpx.AsyncClient, source: dict[str, str]
) -> None:
    account = await register(http)
    response = await http.post("/api/auth/logout", headers={**_cookie(account), **source})
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _still_signed_in(http, account)
    put = await http.put(
        "/api/users/profile", headers={**_cookie(account), **source}, json={"firstName": "Mallory"}
    )
    assert put.status_code == 403
    profile = await http.get("/api/users/profile", headers=account.auth)
    assert profile.json()["firstName"] == "Ada"


async def test_a_cookie_write_from_this_site_passes(
    http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    first, second = await register(http), await register(http)
    by_origin = await http.post(
        "/api/auth/logout", headers={**_cookie(first), "origin": live_server.base_url}
    )
    assert by_origin.status_code == 204, by_origin.text
    assert not await _still_signed_in(http, first)
    by_referer = await http.post(
        "/api/auth/logout",
        headers={**_cookie(second), "referer": f"{live_server.base_url}/app/settings"},
    )
    assert by_referer.status_code == 204, by_referer.text


async def test_bearer_writes_and_cookie_reads_are_untouched(http: httpx.AsyncClient) -> None:
    account = await register(http)
    evil = {"origin": "https://evil.example"}
    read = await http.get("/api/auth/me", headers={**_cookie(account), **evil})
    assert read.status_code == 200
    write = await http.post("/api/auth/logout", headers={**account.auth, **evil})
    assert write.status_code == 204
