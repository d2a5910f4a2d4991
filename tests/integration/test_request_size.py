"""Oversized request targets and header fields: refused, with the security headers."""

from __future__ import annotations

import anyio
import httpx
import pytest

from server.http.request_size import HTTP1_BUFFER_BYTES, MAX_HEADER_BYTES, MAX_TARGET_BYTES
from tests.integration.test_http_hygiene import SECURITY_HEADERS
from tests.support.accounts import register
from tests.support.live_server import LiveServer


async def raw_exchange(port: int, request: bytes) -> bytes:
    """The status line and header block of the answer to `request`, sent as is."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        reply = b""
        with anyio.fail_after(10):
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive()
    return reply


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 1, 200 * 1024])
async def test_oversized_header_fields_are_refused(live_server: LiveServer, size: int) -> None:
    request = (
        b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Padding: "
        + b"a" * size
        + b"\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_exchange(live_server.port, request)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


async def test_431_from_the_app_is_a_problem_with_the_security_headers(
    http: httpx.AsyncClient,
) -> None:
    assert MAX_HEADER_BYTES < HTTP1_BUFFER_BYTES
    response = await http.get("/api/auth/me", headers={"X-Padding": "a" * (MAX_HEADER_BYTES + 1)})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers) >= SECURITY_HEADERS
    assert response.json()["status"] == 431


async def test_414_is_a_problem_with_the_security_headers(http: httpx.AsyncClient) -> None:
    response = await http.get("/health/live", params={"q": "a" * MAX_TARGET_BYTES})
    assert response.status_code == 414
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers) >= SECURITY_HEADERS


async def test_requests_within_the_bounds_are_served(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.get(
        "/api/users/profile",
        params={"q": "a" * (MAX_TARGET_BYTES // 2)},
        headers={**account.auth, "X-Padding": "a" * (MAX_HEADER_BYTES // 2)},
    )
    assert response.status_code == 200, response.text


async def test_a_body_larger_than_the_read_buffer_is_still_read(http: httpx.AsyncClient) -> None:
    account = await register(http)
    padding = b" " * (HTTP1_BUFFER_BYTES * 4)
    response = await http.put(
        "/api/users/profile",
        content=b'{"firstName": "Grace"' + padding + b"}",
        headers={**account.auth, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["firstName"] == "Grace"
