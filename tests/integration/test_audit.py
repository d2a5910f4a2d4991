"""The audit log: each kind of event with its fields, append-only, and only committed changes."""

from __future__ import annotations

import email
import re
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from server.db.pool import create_pool
from server.db.unit import Database
from server.services import audit
from server.settings import load_settings
from tests.support.accounts import GOOD_PASSWORD, Account, login, register, unique_email
from tests.support.courses import add_lesson, create_course, make_teacher
from tests.support.waiting import eventually


async def _entries(http: httpx.AsyncClient, admin: Account, **filters: str) -> list[dict[str, Any]]:
    response = await http.get(
        "/api/system/audit", headers=admin.auth, params={"limit": "100", **filters}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _one(
    http: httpx.AsyncClient,
    admin: Account,
    *,
    within: float = 0,
    target: str | None = None,
    **filters: str,
) -> dict[str, Any]:
    """The single entry matching the filters (and `target`, when given: other tests' entries
    share the admin as actor); waits `within` seconds for a batched one."""

    async def matching() -> list[dict[str, Any]]:
        found = await _entries(http, admin, **filters)
        return [e for e in found if target is None or e["targetId"] == target]

    if within:

        async def written() -> bool:
            return bool(await matching())

        await eventually(written, within=within, poll=0.05)
    found = await matching()
    assert len(found) == 1, found
    return found[0]


async def test_logins_and_their_failures(http: httpx.AsyncClient, admin: Account) -> None:
    account = await register(http)
    signed_in = await login(http, account.email)
    entry = await _one(http, admin, actorId=account.user_id, action="auth.login")
    assert entry["outcome"] == "success"
    assert entry["targetType"] == "session"
    assert entry["clientAddress"] == "127.0.0.1"
    assert entry["occurredAt"]
    assert (await http.get("/api/auth/me", headers=signed_in.auth)).json()["sessionId"] == (
        entry["targetId"]
    )

    wrong = await http.post(
        "/api/auth/login", json={"email": account.email, "password": "not the password at all"}
    )
    assert wrong.status_code == 401
    mine = {"actorId": account.user_id, "action": "auth.login"}

    async def both_logged() -> bool:
        return len(await _entries(http, admin, **mine)) == 2

    await eventually(both_logged, within=10, poll=0.05)
    failed = (await _entries(http, admin, **mine))[0]
    assert failed["outcome"] == "failure"
    assert failed["details"] == {"reason": "wrong_password", "email": account.email}
    assert "not the password" not in str(failed)

    nobody = unique_email("nobody")
    await http.post("/api/auth/login", json={"email": nobody, "password": GOOD_PASSWORD})

    async def unknown_logged() -> bool:
        rows = await _entries(http, admin, action="auth.login")
        return any(r["details"].get("email") == nobody for r in rows)

    await eventually(unknown_logged, within=10, poll=0.05)
    rows = await _entries(http, admin, action="auth.login")
    unknown = next(r for r in rows if r["details"].get("email") == nobody)
    assert unknown["actorId"] is None
    assert unknown["details"]["reason"] == "unknown_account"


async def test_logouts_and_refresh_token_reuse(http: httpx.AsyncClient, admin: Account) -> None:
    account = await register(http)
    assert (await http.post("/api/auth/logout", headers=account.auth)).status_code == 204
    logout = await _one(http, admin, actorId=account.user_id, action="auth.logout")
    assert logout["targetType"] == "session"

    again = await login(http, account.email)
    assert (await http.post("/api/auth/logout-all", headers=again.auth)).status_code == 204
    everything = await _one(http, admin, actorId=account.user_id, action="auth.logout_all")
    assert (everything["targetType"], everything["targetId"]) == ("user", account.user_id)

    third = await login(http, account.email)
    rotated = await http.post("/api/auth/refresh", json={"refreshToken": third.refresh_token})
    assert rotated.status_code == 200
    reused = await http.post("/api/auth/refresh", json={"refreshToken": third.refresh_token})
    assert reused.status_code == 401
    reuse = await _one(http, admin, actorId=account.user_id, action="auth.refresh_reuse")
    assert reuse["outcome"] == "denied"
    assert reuse["targetType"] == "session"
    assert third.refresh_token not in str(reuse)


def _reset_token(mail_dir: Path, recipient: str) -> str | None:
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == recipient and "Reset" in message["Subject"]:
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found = re.search(r"^([A-Za-z0-9_-]{40,})$", payload.decode(), re.MULTILINE)
            return found.group(1) if found else None
    return None


async def test_password_changes_and_resets(
    http: httpx.AsyncClient, admin: Account, mail_dir: Path
) -> None:
    account = await register(http)
    new_password = "a brand new passphrase 77"
    changed = await http.post(
        "/api/users/change-password",
        headers=account.auth,
        json={
            "currentPassword": GOOD_PASSWORD,
            "newPassword": new_password,
            "confirmPassword": new_password,
        },
    )
    assert changed.status_code == 204, changed.text
    change = await _one(http, admin, actorId=account.user_id, action="user.password_change")
    assert change["targetId"] == account.user_id
    assert new_password not in str(change)

    await http.post("/api/auth/forgot-password", json={"email": account.email})
    await eventually(lambda: _reset_token(mail_dir, account.email) is not None, within=10)
    token = _reset_token(mail_dir, account.email)
    assert token is not None
    reset = await http.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": "reset passphrase 31"}
    )
    assert reset.status_code == 204
    entry = await _one(http, admin, actorId=account.user_id, action="user.password_reset")
    assert entry["outcome"] == "success"
    assert token not in str(entry)


async def test_role_status_changes_and_deletions(http: httpx.AsyncClient, admin: Account) -> None:
    account = await register(http)
    path = f"/api/users/{account.user_id}"
    changed = await http.put(path, headers=admin.auth, json={"role": "teacher", "isActive": False})
    assert changed.status_code == 200, changed.text
    role = await _one(
        http, admin, actorId=admin.user_id, action="user.role_change", target=account.user_id
    )
    assert role["targetId"] == account.user_id
    assert (role["details"]["from"], role["details"]["to"]) == ("student", "teacher")
    status = await _one(
        http, admin, actorId=admin.user_id, action="user.status_change", target=account.user_id
    )
    assert (status["details"]["from"], status["details"]["to"]) == (True, False)

    assert (await http.delete(path, headers=admin.auth)).status_code == 204
    deleted = await _one(
        http, admin, actorId=admin.user_id, action="user.delete", target=account.user_id
    )
    assert (deleted["targetType"], deleted["targetId"]) == ("user", account.user_id)


async def test_refused_authorisations(http: httpx.AsyncClient, admin: Account) -> None:
    student = await register(http)
    refused = await http.get("/api/system/audit", headers=student.auth)
    assert refused.status_code == 403
    entry = await _one(http, admin, within=10, actorId=student.user_id, action="access.denied")
    assert entry["outcome"] == "denied"
    assert (entry["targetType"], entry["targetId"]) == ("route", "GET /api/system/audit")
    assert entry["details"] == {"role": "student"}


async def test_course_publish_and_delete(http: httpx.AsyncClient, admin: Account) -> None:
    teacher = await make_teacher(http, admin)
    course = await create_course(http, teacher)
    unpublishable = await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    assert unpublishable.status_code == 409
    assert await _entries(http, admin, actorId=teacher.user_id, action="course.publish") == []
    await add_lesson(http, teacher, course["id"])
    published = await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    assert published.status_code == 200
    entry = await _one(http, admin, actorId=teacher.user_id, action="course.publish")
    assert (entry["targetType"], entry["targetId"]) == ("course", course["id"])
    assert entry["details"] == {"from": "draft"}

    assert (
        await http.delete(f"/api/courses/{course['id']}", headers=admin.auth)
    ).status_code == 204
    deleted = await _one(
        http, admin, actorId=admin.user_id, action="course.delete", target=course["id"]
    )
    assert deleted["targetId"] == course["id"]
    assert deleted["details"]["result"] in ("deleted", "archived")


async def test_grade_changes(http: httpx.AsyncClient, admin: Account) -> None:
    teacher = await make_teacher(http, admin)
    course = await create_course(http, teacher)
    await add_lesson(http, teacher, course["id"])
    await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    made = await http.post(
        f"/api/courses/{course['id']}/assessments",
        headers=teacher.auth,
        json={
            "title": "Essay",
            "kind": "assignment",
            "published": True,
            "questions": [{"type": "essay", "prompt": "Explain recursion.", "points": 8}],
        },
    )
    assert made.status_code == 201, made.text
    student = await register(http)
    assert (
        await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
    ).status_code == 201
    question = made.json()["questions"][0]["id"]
    submitted = await http.post(
        f"/api/assessments/{made.json()['id']}/submissions",
        headers=student.auth,
        json={"answers": [{"questionId": question, "value": "It calls itself."}]},
    )
    assert submitted.status_code == 201, submitted.text
    submission = submitted.json()["id"]
    graded = await http.post(
        f"/api/submissions/{submission}/grade", headers=teacher.auth, json={"score": 7}
    )
    assert graded.status_code == 200, graded.text
    entry = await _one(http, admin, actorId=teacher.user_id, action="grade.change")
    assert (entry["targetType"], entry["targetId"]) == ("submission", submission)
    assert entry["details"] == {
        "from": 0,
        "to": 7,
        "status": "graded",
        "student": student.user_id,
    }


async def test_filters_and_pages(http: httpx.AsyncClient, admin: Account) -> None:
    account = await register(http)
    for _ in range(3):
        await login(http, account.email)
    page = await http.get(
        "/api/system/audit",
        headers=admin.auth,
        params={"actorId": account.user_id, "action": "auth.login", "limit": "2", "page": "2"},
    )
    body = page.json()
    assert (body["total"], body["page"], body["limit"], len(body["items"])) == (3, 2, 2, 1)
    later = await http.get(
        "/api/system/audit",
        headers=admin.auth,
        params={"actorId": account.user_id, "since": "2999-01-01T00:00:00Z"},
    )
    assert later.json()["total"] == 0
    bad = await http.get("/api/system/audit", headers=admin.auth, params={"actorId": "nope"})
    assert bad.status_code == 400


async def test_the_table_refuses_updates_and_deletes(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO audit_log (action, outcome) VALUES ('test.append_only', 'success')"
        )
        for statement in (
            "UPDATE audit_log SET outcome = 'failure' WHERE action = 'test.append_only'",
            "DELETE FROM audit_log WHERE action = 'test.append_only'",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                await conn.execute(statement.encode())
        cur = await conn.execute("SELECT outcome FROM audit_log WHERE action = 'test.append_only'")
        assert await cur.fetchall() == [("success",)]


async def test_a_rolled_back_change_leaves_no_audit_row(database_url: str) -> None:
    settings = load_settings({"DATABASE_URL": database_url})
    pool = create_pool(settings, database_url)
    await pool.open(wait=True)
    try:
        database = Database(pool)

        async def failing_change() -> None:
            async with database.unit() as uow:
                await audit.record(
                    uow, action="test.rolled_back", actor_id=None, address="192.0.2.1"
                )
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError, match="the change failed"):
            await failing_change()
        async with database.unit() as uow:
            await audit.record(uow, action="test.committed", actor_id=None, address="192.0.2.1")
    finally:
        await pool.close()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT action, client_address FROM audit_log"
            " WHERE action IN ('test.rolled_back', 'test.committed')"
        )
        assert await cur.fetchall() == [("test.committed", "192.0.2.1")]


async def test_partitions_are_monthly_and_retention_drops_whole_ones(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE audit_log_2001_01 PARTITION OF audit_log"
            " FOR VALUES FROM ('2001-01-01 00:00+00') TO ('2001-02-01 00:00+00')"
        )
        await conn.execute(
            "INSERT INTO audit_log (occurred_at, action, outcome)"
            " VALUES ('2001-01-15 12:00+00', 'test.ancient', 'success')"
        )
        cur = await conn.execute("SELECT audit_log_maintain(2, now() - interval '365 days')")
        assert await cur.fetchone() == (1,)
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'audit_log'::regclass"
        )
        partitions = {row[0] for row in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT to_char(now() AT TIME ZONE 'UTC' + make_interval(months => m), 'YYYY_MM')"
            " FROM generate_series(0, 2) AS m"
        )
        ahead = {f"audit_log_{row[0]}" for row in await cur.fetchall()}
        assert ahead <= partitions
        assert "audit_log_2001_01" not in partitions
        assert "audit_log_default" in partitions
        cur = await conn.execute("SELECT count(*) FROM audit_log WHERE action = 'test.ancient'")
        assert await cur.fetchone() == (0,)
