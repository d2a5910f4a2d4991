"""Health answers from the actor's cache; readiness follows the database with no restart."""

from __future__ import annotations

import anyio
import httpx

from server.db.migrate import apply_migrations
from tests.support.accounts import Account, register
from tests.support.live_server import LiveServer
from tests.support.services import private_postgres, redis_server_process
from tests.support.waiting import eventually_sync


async def test_live_ready_and_a_terse_public_summary(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/live")).json() == {"status": "ok"}
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()) == {"status", "ready", "draining", "checks"}
    summary = (await http.get("/api/health")).json()
    assert set(summary) == {"status", "ready", "draining", "checks"}
    checks = {c["name"]: c for c in summary["checks"]}
    assert {"postgres", "redis", "memory", "sessions", "cache"} <= set(checks)
    assert all(set(c) == {"name", "status", "required", "responseTimeMs"} for c in checks.values())
    assert checks["postgres"]["status"] == "up"
    assert checks["postgres"]["responseTimeMs"] is not None


async def test_the_full_report_with_errors_and_actors_is_for_admins(
    http: httpx.AsyncClient, admin: Account
) -> None:
    student = await register(http)
    assert (await http.get("/api/system/health")).status_code == 401
    assert (await http.get("/api/system/health", headers=student.auth)).status_code == 403
    response = await http.get("/api/system/health", headers=admin.auth)
    assert response.status_code == 200
    detail = response.json()
    checks = {c["name"]: c for c in detail["checks"]}
    assert {"postgres", "redis", "memory", "sessions", "cache"} <= set(checks)
    assert all("error" in c for c in checks.values())
    assert detail["instanceId"]
    names = {a["name"] for a in detail["actors"]}
    assert {"health", "bus", "sessions", "cache", "mail", "retention"} <= names
    assert all(a["state"] == "running" for a in detail["actors"])
    assert all("lastError" in a for a in detail["actors"])


def _wait_status(base_url: str, expected: int, within: float) -> float:
    def answers() -> bool:
        try:
            return httpx.get(base_url + "/health/ready", timeout=2).status_code == expected
        except httpx.HTTPError:
            return False

    return eventually_sync(answers, within=within)


def test_readiness_follows_the_database_without_a_restart() -> None:
    """Stop the server's own PostgreSQL: 503 within an interval and a probe timeout (with
    slack for a loaded machine), 200 when it returns."""
    with private_postgres() as pg:
        anyio.run(apply_migrations, pg.url)
        with redis_server_process() as redis_url:
            server = LiveServer({"DATABASE_URL": pg.url, "REDIS_URL": redis_url}).start()
            try:
                interval = 0.5
                pg.stop()
                took = _wait_status(server.base_url, 503, within=2 * interval + 2.5)
                assert took <= 2 * interval + 2.5
                pg.start()
                _wait_status(server.base_url, 200, within=2 * interval + 5)
                assert httpx.get(server.base_url + "/health/live").status_code == 200
            finally:
                server.stop()
