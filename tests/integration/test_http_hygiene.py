"""HTTP hygiene of API.md: headers, problem+json, 400/404/405/413/415, CORS, compression, OpenAPI."""

from __future__ import annotations

import anyio
import httpx

from tests.support.accounts import register
from tests.support.live_server import LiveServer

SECURITY_HEADERS = {
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "content-security-policy",
}


async def test_every_response_carries_security_headers_and_no_banner(
    http: httpx.AsyncClient,
) -> None:
    for response in (
        await http.get("/health/live"),
        await http.get("/no/such/route"),
        await http.post("/health/live"),
        await http.get("/api/auth/me"),
    ):
        assert set(response.headers) >= SECURITY_HEADERS, response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "granian" not in response.headers.get("server", "").lower()
        assert "x-powered-by" not in response.headers


async def test_unknown_route_is_a_404_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail", "error", "message"} <= set(problem)
    assert problem["status"] == 404
    assert "trace" not in problem


async def test_wrong_method_is_405_with_allow(http: httpx.AsyncClient) -> None:
    response = await http.delete("/api/auth/login")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json()["status"] == 405


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Malformed JSON body"


async def test_a_non_json_body_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/login", content=b"email=a", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers) >= SECURITY_HEADERS


async def test_an_oversized_body_is_413_and_changes_nothing(
    http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    """The limit answers as soon as Content-Length exceeds it, before the body is read."""
    account = await register(http)
    before = (await http.get("/api/users/profile", headers=account.auth)).json()
    head = (
        "PUT /api/users/profile HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {account.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2000000\r\nConnection: close\r\n\r\n"
    ).encode()
    async with await anyio.connect_tcp("127.0.0.1", live_server.port) as stream:
        await stream.send(head + b'{"firstName": "' + b"a" * 65536)
        reply = b""
        with anyio.fail_after(10):
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert (await http.get("/api/users/profile", headers=account.auth)).json() == before


async def test_large_responses_are_compressed(http: httpx.AsyncClient) -> None:
    for encoding in ("br", "gzip"):
        response = await http.get("/schema/openapi.json", headers={"accept-encoding": encoding})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == encoding


async def test_openapi_describes_the_api(http: httpx.AsyncClient) -> None:
    response = await http.get("/schema/openapi.json")
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    for path in ("/api/auth/login", "/api/auth/me", "/api/users/profile", "/health/ready"):
        assert path in spec["paths"]
    register_body = spec["paths"]["/api/auth/register"]["post"]["requestBody"]
    assert register_body["required"] is True
    schemas = spec["components"]["schemas"]
    assert "firstName" in schemas["RegisterRequest"]["properties"]


async def test_cors_is_an_allow_list(database_url: str) -> None:
    allowed = "https://app.example"
    server = await anyio.to_thread.run_sync(
        lambda: LiveServer({"DATABASE_URL": database_url, "CORS_ORIGINS": allowed}).start()
    )
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
            response = await http.get("/health/live", headers={"origin": allowed})
            assert response.headers["access-control-allow-origin"] == allowed
            preflight = await http.options(
                "/api/auth/login",
                headers={"origin": allowed, "access-control-request-method": "POST"},
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == allowed
            for path in ("/health/live", "/api/auth/login"):
                response = await http.get(path, headers={"origin": "https://evil.example"})
                assert "access-control-allow-origin" not in response.headers
            refused = await http.options(
                "/api/auth/login",
                headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
            )
            assert "access-control-allow-origin" not in refused.headers
    finally:
        server.stop()
