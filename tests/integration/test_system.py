"""The system routes: the route table with its guards, the service registry against a real HTTP
server that goes away, and the cluster's live instances from their Redis heartbeats."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import Account, register
from tests.support.live_server import LiveServer
from tests.support.services import free_port
from tests.support.waiting import eventually, eventually_sync


async def test_the_route_table_lists_every_route_with_its_guard(
    http: httpx.AsyncClient, admin: Account
) -> None:
    response = await http.get("/api/system/routes", headers=admin.auth)
    assert response.status_code == 200, response.text
    table = {(r["path"], tuple(r["methods"])): r for r in response.json()["items"]}
    assert table[("/health/live", ("GET",))]["guard"] == {"access": "public", "rateLimit": "off"}
    assert table[("/api/auth/login", ("POST",))]["guard"] == {
        "access": "public",
        "rateLimit": "auth",
    }
    assert table[("/api/auth/me", ("GET",))]["guard"] == {"access": "auth"}
    assert table[("/api/users/all", ("GET",))]["guard"] == {
        "access": "min_role",
        "minRole": "admin",
    }
    assert table[("/api/system/routes", ("GET",))]["guard"] == {
        "access": "permission",
        "permission": "system.monitor",
    }
    assert table[("/api/courses/{course_id:uuid}", ("DELETE",))]["guard"]["access"] == (
        "permission"
    )
    assert all(r["handler"] for r in table.values())
    assert len(table) >= 40


async def test_system_routes_are_for_admins_only(http: httpx.AsyncClient) -> None:
    student = await register(http)
    for path in ("audit", "routes", "services", "instances"):
        response = await http.get(f"/api/system/{path}", headers=student.auth)
        assert response.status_code == 403, path


@pytest.fixture
def downstream() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real HTTP server on 127.0.0.1 serving one file."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sevenp-downstream-") as root:
        (Path(root) / "status").write_text("ok\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            eventually_sync(answers, within=15, poll=0.05)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


async def _services(client: httpx.AsyncClient, admin: Account) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/system/services", headers=admin.auth)
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["items"]}


async def test_the_service_registry_follows_a_downstream_service(
    database_url: str,
    redis_url: str,
    admin: Account,
    http: httpx.AsyncClient,
    downstream: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, proc = downstream
    services = f"files=http://127.0.0.1:{port}/status,missing=http://127.0.0.1:{port}/nowhere"
    server = LiveServer(
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SERVICES": services}
    ).start()
    client = httpx.AsyncClient(base_url=server.base_url, timeout=5)
    try:

        async def files_is(status: str) -> bool:
            return (await _services(client, admin))["files"]["status"] == status

        await eventually(lambda: files_is("up"), within=15, poll=0.1)
        found = await _services(client, admin)
        assert found["files"]["url"] == f"http://127.0.0.1:{port}/status"
        assert found["files"]["responseTimeMs"] >= 0
        assert found["files"]["lastCheckedAt"] > 0
        assert found["missing"]["status"] == "down"
        assert "404" in found["missing"]["error"]

        proc.terminate()
        proc.wait(10)
        await eventually(lambda: files_is("down"), within=15, poll=0.1)
        assert (await _services(client, admin))["files"]["error"]
        assert (await client.get("/health/ready")).status_code == 200
    finally:
        await client.aclose()
        server.stop()


async def _instance_id(client: httpx.AsyncClient, admin: Account) -> str:
    report = await client.get("/api/system/health", headers=admin.auth)
    instance: str = report.json()["instanceId"]
    return instance


async def _instances(client: httpx.AsyncClient, admin: Account) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/system/instances", headers=admin.auth)
    assert response.status_code == 200, response.text
    return {i["instanceId"]: i for i in response.json()["items"]}


async def test_every_live_instance_is_listed_with_its_actors(
    http: httpx.AsyncClient,
    admin: Account,
    second_server: LiveServer,
    database_url: str,
    redis_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        first_id, second_id = await _instance_id(http, admin), await _instance_id(other, admin)

        async def both_listed() -> bool:
            return {first_id, second_id} <= set(await _instances(http, admin))

        await eventually(both_listed, within=15, poll=0.1)
        listed = await _instances(other, admin)
        assert {first_id, second_id} <= set(listed)
        for instance in (listed[first_id], listed[second_id]):
            assert instance["ready"] is True
            assert instance["version"]
            assert instance["pid"] > 0
            actors = {a["name"]: a["state"] for a in instance["actors"]}
            assert {"health", "bus", "sessions", "audit", "retention"} <= set(actors)

        third = LiveServer({"DATABASE_URL": database_url, "REDIS_URL": redis_url}).start()
        try:
            async with httpx.AsyncClient(base_url=third.base_url, timeout=10) as client:
                third_id = await _instance_id(client, admin)

            async def third_listed() -> bool:
                return third_id in await _instances(http, admin)

            await eventually(third_listed, within=15, poll=0.1)
        finally:
            third.stop()
        assert third_id not in await _instances(http, admin)
