"""Two instances sharing PostgreSQL and Redis: a logout on one is refused on the other within 1 s."""

from __future__ import annotations

import time

import httpx

from tests.support.accounts import login, register
from tests.support.live_server import LiveServer


async def _refused_within(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        if (await client.get("/api/auth/me", headers=headers)).status_code == 401:
            return time.monotonic() - started
    raise AssertionError("the other instance still accepted the token after 1 s")


async def test_logout_on_one_instance_is_refused_on_the_other(
    http: httpx.AsyncClient, second_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        account = await register(http)
        assert (await other.get("/api/auth/me", headers=account.auth)).status_code == 200
        assert (await http.post("/api/auth/logout", headers=account.auth)).status_code == 204
        await _refused_within(other, account.auth)


async def test_logout_all_and_password_change_propagate(
    http: httpx.AsyncClient, second_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        account = await register(http)
        second = await login(other, account.email)
        assert (await http.get("/api/auth/me", headers=second.auth)).status_code == 200
        assert (await other.post("/api/auth/logout-all", headers=second.auth)).status_code == 204
        await _refused_within(http, account.auth)


async def test_the_other_instance_measures_how_long_a_revocation_took_to_arrive(
    http: httpx.AsyncClient, second_server: LiveServer
) -> None:
    def arrived(scrape: str) -> float:
        counts = [
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("sevenp_sessions_revocation_propagation_seconds_count")
        ]
        return sum(counts)

    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        before = arrived((await other.get("/metrics")).text)
        account = await register(http)
        assert (await http.post("/api/auth/logout", headers=account.auth)).status_code == 204
        await _refused_within(other, account.auth)
        assert arrived((await other.get("/metrics")).text) > before
