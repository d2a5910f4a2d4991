"""The analytics overview on a known data set in a database of its own: every figure, each
role's scope, the daily trend and the top courses."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.accounts import Account, login, register
from tests.support.courses import published_course
from tests.support.isolated import IsolatedServer, isolated_server


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-wide, so that the data set is made once for every test here."""
    return "asyncio"


@pytest.fixture(scope="module")
def server(postgres_admin_url: str, redis_url: str) -> Iterator[IsolatedServer]:
    with isolated_server(postgres_admin_url, redis_url) as isolated:
        yield isolated


@dataclass
class World:
    admin: Account
    teacher: Account
    other_teacher: Account
    student: Account
    course_x: dict[str, Any]
    course_y: dict[str, Any]
    course_z: dict[str, Any]


async def _sql(url: str, statement: str, params: dict[str, Any] | None = None) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement, params)


async def _submit(
    url: str, assessment: str, student: str, course: str, number: int, score: float, status: str
) -> None:
    await _sql(
        url,
        "WITH e AS (SELECT id FROM enrollments WHERE user_id = %(user)s AND course_id = %(course)s),"
        " t AS (INSERT INTO attempts (assessment_id, enrollment_id, user_id, number, submitted_at)"
        "   SELECT %(a)s, e.id, %(user)s, %(n)s, now() FROM e RETURNING id, enrollment_id)"
        " INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id,"
        "   attempt_number, max_score, raw_score, score, status)"
        " SELECT t.id, %(a)s, t.enrollment_id, %(user)s, %(n)s, 10, %(s)s, %(s)s, %(status)s FROM t",
        {
            "a": assessment,
            "user": student,
            "course": course,
            "n": number,
            "s": score,
            "status": status,
        },
    )


async def _assessment(url: str, course: str) -> str:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "INSERT INTO assessments (course_id, title, kind, published, max_score)"
            " VALUES (%s, 'Checkpoint', 'quiz', true, 10) RETURNING id::text",
            (course,),
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
async def world(server: IsolatedServer) -> World:
    """Teacher T teaches X (2 lessons) and Y (1 lesson), teacher U teaches Z.

    s1 enrolls in X and Y and completes X; s2 enrolls in X three days ago and completes one
    lesson of two; s3 enrolls in Z; s4 enrolls in Y, last signed in ten days ago. Graded
    scores: s1 8/10 and s2 6/10 in X (s2 also has 2/10 pending review), s3 10/10 in Z.
    """
    url = server.database_url
    admin_email, teacher_email, other_email = (
        server.create_user(role) for role in ("admin", "teacher", "teacher")
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        admin = await login(http, admin_email)
        teacher = await login(http, teacher_email)
        other = await login(http, other_email)
        course_x, lessons_x = await published_course(http, teacher, lessons=2, title="Course X")
        course_y, _ = await published_course(http, teacher, lessons=1, title="Course Y")
        course_z, _ = await published_course(http, other, lessons=1, title="Course Z")
        s1, s2, s3, s4 = [await register(http) for _ in range(4)]
        for student, course in ((s1, course_x), (s1, course_y), (s2, course_x), (s3, course_z),
                                (s4, course_y)):  # fmt: skip
            response = await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
            assert response.status_code == 201, response.text
        for student, lessons in ((s1, lessons_x), (s2, lessons_x[:1])):
            for lesson in lessons:
                done = await http.post(
                    f"/api/courses/{course_x['id']}/lessons/{lesson['id']}/complete",
                    headers=student.auth,
                )
                assert done.status_code == 200, done.text
    await _sql(
        url,
        "UPDATE enrollments SET enrolled_at = now() - interval '3 days'"
        " WHERE user_id = %(user)s AND course_id = %(course)s",
        {"user": s2.user_id, "course": course_x["id"]},
    )
    await _sql(url, "DELETE FROM sessions WHERE user_id = %(user)s", {"user": s4.user_id})
    await _sql(
        url,
        "UPDATE users SET last_login_at = now() - interval '10 days' WHERE id = %(user)s",
        {"user": s4.user_id},
    )
    quiz_x = await _assessment(url, course_x["id"])
    quiz_z = await _assessment(url, course_z["id"])
    await _submit(url, quiz_x, s1.user_id, course_x["id"], 1, 8, "graded")
    await _submit(url, quiz_x, s2.user_id, course_x["id"], 1, 6, "graded")
    await _submit(url, quiz_x, s2.user_id, course_x["id"], 2, 2, "pending_review")
    await _submit(url, quiz_z, s3.user_id, course_z["id"], 1, 10, "graded")
    return World(admin, teacher, other, s1, course_x, course_y, course_z)


@pytest.fixture
async def http(server: IsolatedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as client:
        yield client


async def _overview(http: httpx.AsyncClient, who: Account, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/analytics/overview", headers=who.auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_teacher_sees_the_figures_of_their_own_courses(
    http: httpx.AsyncClient, world: World
) -> None:
    body = await _overview(http, world.teacher)
    assert body["scope"] == "own"
    assert body["days"] == 30
    assert body["totals"] == {
        "users": {
            "total": 3, "students": 3, "teachers": 0, "admins": 0,
            "active7Days": 2, "active30Days": 3,
        },
        "courses": 2,
        "publishedCourses": 2,
        "enrollments": 4,
        "completions": 1,
        "completionRate": 25.0,
        "averageProgress": 37.5,
        "averageScore": 70.0,
    }  # fmt: skip
    top = body["topCourses"]
    assert [c["title"] for c in top] == ["Course X", "Course Y"]
    assert [(c["rank"], c["enrollments"], c["completions"]) for c in top] == [(1, 2, 1), (1, 2, 0)]
    assert [c["averageProgress"] for c in top] == [75.0, 0.0]
    assert [c["share"] for c in top] == [50.0, 50.0]


async def test_another_teacher_sees_only_theirs(http: httpx.AsyncClient, world: World) -> None:
    body = await _overview(http, world.other_teacher)
    totals = body["totals"]
    assert (totals["enrollments"], totals["completions"], totals["courses"]) == (1, 0, 1)
    assert totals["users"]["total"] == 1
    assert totals["averageScore"] == 100.0
    assert [c["title"] for c in body["topCourses"]] == ["Course Z"]


async def test_an_admin_sees_everything(http: httpx.AsyncClient, world: World) -> None:
    body = await _overview(http, world.admin)
    assert body["scope"] == "all"
    totals = body["totals"]
    assert totals["users"] == {
        "total": 7, "students": 4, "teachers": 2, "admins": 1,
        "active7Days": 6, "active30Days": 7,
    }  # fmt: skip
    assert (totals["courses"], totals["enrollments"], totals["completions"]) == (3, 5, 1)
    assert totals["averageProgress"] == 30.0
    assert totals["averageScore"] == 80.0
    assert [c["title"] for c in body["topCourses"]] == ["Course X", "Course Y", "Course Z"]
    assert [c["rank"] for c in body["topCourses"]] == [1, 1, 3]


async def test_the_daily_trend_covers_each_day_of_the_window(
    http: httpx.AsyncClient, world: World
) -> None:
    body = await _overview(http, world.teacher, days=7)
    trends = body["trends"]
    today = dt.datetime.now(dt.UTC).date()
    assert [t["date"] for t in trends] == [
        (today - dt.timedelta(days=n)).isoformat() for n in range(6, -1, -1)
    ]
    by_date = {t["date"]: t for t in trends}
    assert by_date[(today - dt.timedelta(days=3)).isoformat()]["enrollments"] == 1
    assert by_date[today.isoformat()]["enrollments"] == 3
    assert by_date[today.isoformat()]["completions"] == 1
    assert sum(t["enrollments"] for t in trends) == 4
    assert trends[-1]["cumulativeEnrollments"] == 4
    assert trends[-1]["cumulativeCompletions"] == 1
    assert len((await _overview(http, world.teacher, days=365))["trends"]) == 365
    assert len((await _overview(http, world.teacher))["trends"]) == 30


async def test_a_window_outside_1_to_365_days_is_refused(
    http: httpx.AsyncClient, world: World
) -> None:
    for days in ("0", "366", "-1", "1.5", "x"):
        response = await http.get(
            "/api/analytics/overview", headers=world.teacher.auth, params={"days": days}
        )
        assert response.status_code == 400, days
        assert [d["field"] for d in response.json()["details"]] == ["days"]


async def test_students_are_refused(http: httpx.AsyncClient, world: World) -> None:
    response = await http.get("/api/analytics/overview", headers=world.student.auth)
    assert response.status_code == 403
    export = await http.get("/api/analytics/export", headers=world.student.auth)
    assert export.status_code == 403
    teacher_export = await http.get("/api/analytics/export", headers=world.teacher.auth)
    assert teacher_export.status_code == 403


async def test_an_empty_scope_has_zero_figures(http: httpx.AsyncClient, server: IsolatedServer,
                                               world: World) -> None:  # fmt: skip
    newcomer = await login(http, server.create_user("teacher"))
    body = await _overview(http, newcomer, days=3)
    totals = body["totals"]
    assert totals["users"]["total"] == 0
    assert (totals["enrollments"], totals["averageProgress"], totals["averageScore"]) == (
        0,
        0.0,
        None,
    )
    assert body["topCourses"] == []
    assert [t["enrollments"] for t in body["trends"]] == [0, 0, 0]
