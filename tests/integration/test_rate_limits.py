"""Rate limits over HTTP: the reference's login test, headers, a shared budget, Redis outages."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.support.accounts import GOOD_PASSWORD, register, unique_email
from tests.support.live_server import LiveServer
from tests.support.services import free_port, redis_server_process

_ITEM = re.compile(r'^"(?P<name>[^"\\]+)"(?P<params>(;[a-z]+=\d+)+)$')


def _parse_list(value: str) -> list[tuple[str, dict[str, int]]]:
    """An RFC 8941 List of sf-string Items with integer parameters, as the draft uses."""
    items = []
    for member in value.split(", "):
        match = _ITEM.match(member)
        assert match, value
        params = dict(p.split("=") for p in match["params"].strip(";").split(";"))
        items.append((match["name"], {k: int(v) for k, v in params.items()}))
    return items


@pytest.fixture(scope="module")
def strict_server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    """The reference's auth limit (5 per 15 min) and its api quota of 100, over an hour rather
    than a minute so that no unit comes back while a test sends its 101 requests on a busy
    machine (one per 0.6 s would)."""
    server = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RATE_LIMIT_AUTH": "5/900",
            "RATE_LIMIT_API": "100/3600",
            "TRUSTED_PROXIES": "127.0.0.1",
        }
    ).start()
    yield server
    server.stop()


def _client_at(server: LiveServer, address: str) -> httpx.AsyncClient:
    """A client behind the trusted proxy 127.0.0.1, appearing as `address`."""
    return httpx.AsyncClient(
        base_url=server.base_url, timeout=10, headers={"x-forwarded-for": address}
    )


async def test_ten_rapid_bad_logins_meet_a_429(strict_server: LiveServer) -> None:
    async with _client_at(strict_server, "203.0.113.10") as http:
        statuses = []
        for _ in range(10):
            response = await http.post(
                "/api/auth/login", json={"email": unique_email(), "password": "wrong password 1"}
            )
            statuses.append(response.status_code)
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429] * 5
        limited = response
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == 429


async def test_rate_limit_fields_parse_per_the_draft(strict_server: LiveServer) -> None:
    async with _client_at(strict_server, "203.0.113.11") as http:
        response = await http.post("/api/auth/forgot-password", json={"email": unique_email()})
        assert response.status_code == 202
        policies = dict(_parse_list(response.headers["ratelimit-policy"]))
        assert policies["general"] == {"q": 1000000, "w": 900}
        assert "auth" in policies
        assert policies["auth"] == {"q": 5, "w": 900}
        assert policies["api"] == {"q": 100, "w": 3600}
        [(name, left)] = _parse_list(response.headers["ratelimit"])
        assert (name, set(left)) == ("auth", {"r", "t"})
        assert left["r"] == 4
        health = await http.get("/health/live")
        assert "ratelimit" not in health.headers


async def test_the_api_limit_is_per_user(strict_server: LiveServer) -> None:
    async with _client_at(strict_server, "203.0.113.12") as http:
        account = await register(http)
        other = await register(http)
        responses = [await http.get("/api/auth/me", headers=account.auth) for _ in range(101)]
        assert [response.status_code for response in responses] == [200] * 100 + [429]
        assert (await http.get("/api/auth/me", headers=other.auth)).status_code == 200
    # The fields of the per-user limit, as the route's plan formats them.
    [(name, first)] = _parse_list(responses[0].headers["ratelimit"])
    assert (name, first) == ("api", {"r": 99, "t": 36})
    limited = responses[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert set(dict(_parse_list(limited.headers["ratelimit-policy"]))) == {"general", "api"}
    [(name, last)] = _parse_list(limited.headers["ratelimit"])
    assert (name, last["r"]) == ("api", 0)


async def test_requests_refused_by_authentication_count_against_their_address(
    database_url: str, redis_url: str
) -> None:
    server = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RATE_LIMIT_GENERAL": "3/3600",
            "TRUSTED_PROXIES": "127.0.0.1",
        }
    ).start()
    try:
        async with _client_at(server, "203.0.113.21") as http:
            account = await register(http)
        async with _client_at(server, "203.0.113.20") as http:
            statuses = [(await http.get("/api/auth/me")).status_code for _ in range(4)]
            assert statuses == [401, 401, 401, 429]
            # The address is spent: a valid token does not reopen it.
            limited = await http.get("/api/auth/me", headers=account.auth)
            assert limited.status_code == 429
            [(name, left)] = _parse_list(limited.headers["ratelimit"])
            assert (name, left["r"]) == ("general", 0)
    finally:
        server.stop()


async def test_successful_logins_are_not_counted(database_url: str, redis_url: str) -> None:
    server = LiveServer(
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RATE_LIMIT_AUTH": "3/900"}
    ).start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            account = await register(http)
            for _ in range(6):
                response = await http.post(
                    "/api/auth/login", json={"email": account.email, "password": GOOD_PASSWORD}
                )
                assert response.status_code == 200
    finally:
        server.stop()


async def _admitted(servers: list[LiveServer], address: str, seconds: float) -> int:
    """Requests not refused with 429, sent round-robin to the instances for `seconds`."""
    clients = [_client_at(server, address) for server in servers]
    admitted = 0
    try:
        deadline = time.monotonic() + seconds
        turn = 0
        while time.monotonic() < deadline:
            response = await clients[turn % len(clients)].get("/api/auth/me")
            assert response.status_code in (401, 429), response.status_code
            admitted += response.status_code != 429
            turn += 1
    finally:
        for client in clients:
            await client.aclose()
    return admitted


async def test_instances_share_one_budget_within_the_stated_bound(
    database_url: str, redis_url: str
) -> None:
    limit, window, instances, duration = 40, 30.0, 2, 2.0
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_GENERAL": f"{limit}/{window:g}",
    }
    servers = [LiveServer(env).start() for _ in range(instances)]
    try:
        admitted = await _admitted(servers, f"198.51.100.{free_port() % 250}", duration)
    finally:
        for server in servers:
            server.stop()
    interval = window / limit
    flush, round_trip = 0.1, 0.05  # RATE_LIMIT_FLUSH_SECONDS's default
    reach = 2 * (flush + round_trip)
    bound = limit + duration / interval + (instances - 1) * (limit + reach / interval)
    assert limit <= admitted <= bound, (admitted, bound)


async def test_a_redis_outage_falls_back_without_errors_and_recovers(database_url: str) -> None:
    port = free_port()
    outage_env = {
        "DATABASE_URL": database_url,
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_GENERAL": "30/60",
        "RATE_LIMIT_AUTH": "3/900",
    }
    with redis_server_process(port) as url:
        server = LiveServer({**outage_env, "REDIS_URL": url}).start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            account = await register(http)
    try:
        # Redis is gone now.
        async with _client_at(server, "192.0.2.50") as http:
            with anyio.fail_after(10):
                while True:
                    checks = {
                        c["name"]: c for c in (await http.get("/api/health")).json()["checks"]
                    }
                    if checks["ratelimit"]["status"] == "degraded":
                        break
                    await http.get("/api/auth/me", headers=account.auth)
                    await anyio.sleep(0.2)
            assert checks["sessions"]["status"] == "degraded"
            assert (await http.get("/health/ready")).status_code == 200
            statuses = [
                (await http.get("/api/auth/me", headers=account.auth)).status_code
                for _ in range(40)
            ]
            assert all(s < 500 for s in statuses), statuses
            assert 200 in statuses
            assert statuses[-1] == 429
            logins = [
                (
                    await http.post(
                        "/api/auth/login",
                        json={"email": account.email, "password": "wrong one 123"},
                    )
                ).status_code
                for _ in range(5)
            ]
        assert logins[-1] == 429
        assert all(s < 500 for s in logins)

        with redis_server_process(port):
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                with anyio.fail_after(15):
                    while True:
                        body = (await http.get("/api/health")).json()
                        checks = {c["name"]: c for c in body["checks"]}
                        if checks["ratelimit"]["status"] == checks["sessions"]["status"] == "up":
                            break
                        await anyio.sleep(0.2)
                response = await http.get("/api/auth/me", headers=account.auth)
                assert response.status_code == 200
    finally:
        server.stop()
