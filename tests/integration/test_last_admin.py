"""The last active admin cannot demote, deactivate or delete itself; operators recover by CLI.

"Last" counts every admin of the database, so this module has a database and a server of its
own: the shared one has admins from every other module.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import psycopg
import pytest

from server.db.migrate import apply_migrations
from tests.support.accounts import GOOD_PASSWORD, Account, create_user_cli, login, unique_email
from tests.support.live_server import ROOT, LiveServer
from tests.support.services import throwaway_database
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def own_database_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        yield url


@pytest.fixture(scope="module")
def own_server(own_database_url: str, redis_url: str) -> Iterator[LiveServer]:
    server = LiveServer({"DATABASE_URL": own_database_url, "REDIS_URL": redis_url}).start()
    yield server
    server.stop()


@pytest.fixture
async def client(own_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own_server.base_url, timeout=15) as client:
        yield client


@pytest.fixture
async def conn(own_database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """Every admin the test made is demoted afterwards, so each test starts with none."""
    async with await psycopg.AsyncConnection.connect(own_database_url, autocommit=True) as conn:
        yield conn
        await conn.execute("UPDATE users SET role = 'student' WHERE role = 'admin'")


def _cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **server.env},
        timeout=60,
        check=False,
    )


async def _admin(client: httpx.AsyncClient, server: LiveServer) -> Account:
    email = unique_email("admin")
    made = await anyio.to_thread.run_sync(
        lambda: create_user_cli({**os.environ, **server.env}, email=email, role="admin")
    )
    assert made.returncode == 0, made.stderr
    return await login(client, email, GOOD_PASSWORD)


async def _standing(conn: psycopg.AsyncConnection, user_id: str) -> tuple[str, bool]:
    cur = await conn.execute("SELECT role, is_active FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize(
    ("method", "body"),
    [("PUT", {"role": "teacher"}), ("PUT", {"isActive": False}), ("DELETE", None)],
)
async def test_the_last_active_admin_cannot_leave_no_admin(
    client: httpx.AsyncClient,
    own_server: LiveServer,
    conn: psycopg.AsyncConnection,
    method: str,
    body: dict[str, object] | None,
) -> None:
    admin = await _admin(client, own_server)
    path = f"/api/users/{admin.user_id}"
    refused = await client.request(method, path, headers=admin.auth, json=body)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await _standing(conn, admin.user_id) == ("admin", True)
    assert (await client.put(path, headers=admin.auth, json={"role": "admin"})).status_code == 200

    other = await _admin(client, own_server)
    allowed = await client.request(method, path, headers=other.auth, json=body)
    assert allowed.status_code in (200, 204), allowed.text
    last = await client.request(
        method, f"/api/users/{other.user_id}", headers=other.auth, json=body
    )
    assert last.status_code == 409


async def test_of_two_admins_demoting_each_other_at_once_the_second_is_refused(
    client: httpx.AsyncClient,
    own_server: LiveServer,
    own_database_url: str,
    conn: psycopg.AsyncConnection,
) -> None:
    first = await _admin(client, own_server)
    second = await _admin(client, own_server)
    async with await psycopg.AsyncConnection.connect(own_database_url) as concurrent:
        # Another unit of work demoting `first`, as the service does, still open.
        await concurrent.execute(
            "SELECT id FROM users WHERE role = 'admin' AND is_active ORDER BY id FOR UPDATE"
        )
        await concurrent.execute(
            "UPDATE users SET role = 'student' WHERE id = %s", (first.user_id,)
        )
        async with anyio.create_task_group() as tg:
            answers: list[httpx.Response] = []

            async def demote_second() -> None:
                answers.append(
                    await client.put(
                        f"/api/users/{second.user_id}",
                        headers=second.auth,
                        json={"role": "student"},
                    )
                )

            tg.start_soon(demote_second)

            async def waiting_for_a_lock() -> bool:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                row = await cur.fetchone()
                return row is not None and row[0] == 1

            await eventually(waiting_for_a_lock, within=15, poll=0.02)
            await concurrent.commit()
    assert answers[0].status_code == 409, answers[0].text
    assert await _standing(conn, second.user_id) == ("admin", True)


async def test_operators_unlock_and_re_role_an_account_from_the_cli(
    client: httpx.AsyncClient, own_server: LiveServer, conn: psycopg.AsyncConnection
) -> None:
    email = unique_email("operator")
    made = await anyio.to_thread.run_sync(
        lambda: create_user_cli({**os.environ, **own_server.env}, email=email, role="student")
    )
    assert made.returncode == 0, made.stderr
    user_id = made.stdout.strip()
    await conn.execute(
        "UPDATE users SET is_active = false, login_attempts = 5,"
        " lock_until = now() + interval '1 hour' WHERE id = %s",
        (user_id,),
    )
    locked_out = await client.post(
        "/api/auth/login", json={"email": email, "password": GOOD_PASSWORD}
    )
    assert locked_out.status_code == 423

    unlocked = await anyio.to_thread.run_sync(
        lambda: _cli(own_server, "unlock-user", "--email", email)
    )
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.strip() == user_id
    session = await login(client, email, GOOD_PASSWORD)

    promoted = await anyio.to_thread.run_sync(
        lambda: _cli(own_server, "set-role", "--email", email.upper(), "--role", "admin")
    )
    assert promoted.returncode == 0, promoted.stderr
    assert await _standing(conn, user_id) == ("admin", True)
    assert (
        await client.post("/api/auth/refresh", json={"refreshToken": session.refresh_token})
    ).status_code == 401
    admin = await login(client, email, GOOD_PASSWORD)
    assert (await client.get("/api/users/all", headers=admin.auth)).status_code == 200

    last = await anyio.to_thread.run_sync(
        lambda: _cli(own_server, "set-role", "--email", email, "--role", "teacher")
    )
    assert last.returncode == 1
    assert "last active admin" in last.stderr
    assert await _standing(conn, user_id) == ("admin", True)

    unknown = await anyio.to_thread.run_sync(
        lambda: _cli(own_server, "unlock-user", "--email", unique_email())
    )
    assert unknown.returncode == 1
    assert "No account" in unknown.stderr
