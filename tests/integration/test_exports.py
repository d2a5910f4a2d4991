"""The enrollments export and the gradebook CSV: contents, filters, the injection guard,
streaming from a cursor, and connections returned however a reader ends."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import psutil
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from server.db.migrate import apply_migrations
from server.db.unit import Database
from server.services.exports import stream_enrollments_csv, stream_gradebook_csv
from tests.support.accounts import Account, create_user_cli, login, register, unique_email
from tests.support.courses import published_course
from tests.support.isolated import IsolatedServer, isolated_server
from tests.support.live_server import LiveServer
from tests.support.services import throwaway_database
from tests.support.waiting import eventually

POOL_MAX = 3
BULK_ROWS = 60_000
HEADER = [
    "enrollment_id", "user_id", "user_email", "user_name", "course_id", "course_title", "status",
    "progress", "enrolled_at", "completed_at", "submissions", "average_score", "average_percent",
]  # fmt: skip


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-wide, so that the data set is made once for every test here."""
    return "asyncio"


@pytest.fixture(scope="module")
def server(postgres_admin_url: str, redis_url: str) -> Iterator[IsolatedServer]:
    env = {"DB_POOL_MIN": "1", "DB_POOL_MAX": str(POOL_MAX), "DB_TIMEOUT_SECONDS": "3"}
    with isolated_server(postgres_admin_url, redis_url, env) as isolated:
        yield isolated


async def _sql(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(statement, params)
        return await cur.fetchall() if cur.description else []


@dataclass
class World:
    admin: Account
    small: dict[str, Any]
    bulk: dict[str, Any]
    students: list[Account]


@pytest.fixture(scope="module")
async def world(server: IsolatedServer) -> World:
    """A small course with three students (one named like a formula, one enrolled ten days
    ago, one with two graded submissions), and a bulk course of BULK_ROWS enrollments made
    400 days ago."""
    url = server.database_url
    admin_email, teacher_email = server.create_user("admin"), server.create_user("teacher")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        admin, teacher = await login(http, admin_email), await login(http, teacher_email)
        small, _ = await published_course(http, teacher, lessons=1, title='Small, "quoted"')
        bulk, _ = await published_course(http, teacher, lessons=1, title="Bulk course")
        students = [await register(http) for _ in range(3)]
        for student in students:
            enrolled = await http.post(f"/api/courses/{small['id']}/enroll", headers=student.auth)
            assert enrolled.status_code == 201
    await _sql(
        url,
        "UPDATE users SET first_name = '=HYPERLINK(\"http://evil.example\")',"
        " last_name = '-2+3' WHERE id = %s",
        (students[0].user_id,),
    )
    await _sql(
        url,
        "UPDATE enrollments SET enrolled_at = now() - interval '10 days'"
        " WHERE user_id = %s AND course_id = %s",
        (students[1].user_id, small["id"]),
    )
    await _sql(
        url,
        "WITH a AS (INSERT INTO assessments (course_id, title, kind, published, max_score)"
        "   VALUES (%(course)s, 'Quiz', 'quiz', true, 20) RETURNING id),"
        " e AS (SELECT id FROM enrollments WHERE user_id = %(user)s AND course_id = %(course)s),"
        " t AS (INSERT INTO attempts (assessment_id, enrollment_id, user_id, number)"
        "   SELECT a.id, e.id, %(user)s, n FROM a, e, generate_series(1, 2) AS n"
        "   RETURNING id, assessment_id, enrollment_id, number)"
        " INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id,"
        "   attempt_number, max_score, raw_score, score, status)"
        " SELECT t.id, t.assessment_id, t.enrollment_id, %(user)s, t.number, 20,"
        "   10 * t.number - 5, 10 * t.number - 5, 'graded' FROM t",
        {"course": small["id"], "user": students[2].user_id},
    )
    await _sql(
        url,
        "WITH u AS (INSERT INTO users (email, password_hash, first_name, last_name)"
        "   SELECT 'bulk-' || i || '-' || %(tag)s || '@example.test', 'x', 'Bulk', 'Learner ' || i"
        "   FROM generate_series(1, %(n)s) AS i RETURNING id)"
        " INSERT INTO enrollments (user_id, course_id, enrolled_at)"
        " SELECT id, %(course)s, now() - interval '400 days' FROM u",
        {"n": BULK_ROWS, "course": bulk["id"], "tag": uuid.uuid4().hex[:6]},
    )
    return World(admin, small, bulk, students)


@pytest.fixture
async def http(server: IsolatedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


async def _export(http: httpx.AsyncClient, who: Account, **params: Any) -> httpx.Response:
    return await http.get("/api/analytics/export", headers=who.auth, params=params)


async def test_the_export_is_a_csv_attachment_of_a_course_s_enrollments(
    http: httpx.AsyncClient, world: World
) -> None:
    response = await _export(http, world.admin, courseId=world.small["id"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="enrollments-')
    assert disposition.endswith('.csv"')
    assert "content-length" not in response.headers
    assert response.text.splitlines()[0] == ",".join(HEADER)
    rows = _rows(response.content)
    assert [r["user_id"] for r in rows] == [
        world.students[1].user_id, world.students[0].user_id, world.students[2].user_id
    ]  # fmt: skip
    assert {r["course_title"] for r in rows} == {'Small, "quoted"'}
    assert {(r["status"], r["progress"]) for r in rows} == {("active", "0.0")}
    by_user = {r["user_id"]: r for r in rows}
    graded = by_user[world.students[2].user_id]
    assert (graded["submissions"], graded["average_score"], graded["average_percent"]) == (
        "2", "10.0", "50.0"
    )  # fmt: skip
    ungraded = by_user[world.students[1].user_id]
    assert (ungraded["submissions"], ungraded["average_score"]) == ("0", "")
    enrolled_at = dt.datetime.fromisoformat(ungraded["enrolled_at"])
    assert enrolled_at.utcoffset() == dt.timedelta(0)
    assert ungraded["completed_at"] == ""


async def test_cells_that_would_be_formulas_are_guarded(
    http: httpx.AsyncClient, world: World
) -> None:
    response = await _export(http, world.admin, courseId=world.small["id"])
    by_user = {r["user_id"]: r for r in _rows(response.content)}
    assert by_user[world.students[0].user_id]["user_name"] == (
        '\'=HYPERLINK("http://evil.example") -2+3'
    )
    assert '"\'=HYPERLINK(""http://evil.example"") -2+3"' in response.text


async def test_since_keeps_the_enrollments_made_from_then_on(
    http: httpx.AsyncClient, world: World
) -> None:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    rows = _rows((await _export(http, world.admin, since=since)).content)
    assert {r["user_id"] for r in rows} == {world.students[0].user_id, world.students[2].user_id}
    naive = (dt.datetime.now(dt.UTC) - dt.timedelta(days=11)).replace(tzinfo=None).isoformat()
    both = _rows(
        (await _export(http, world.admin, since=naive, courseId=world.small["id"])).content
    )
    assert len(both) == 3
    nothing = await _export(http, world.admin, courseId=str(uuid.uuid4()))
    assert nothing.status_code == 200
    assert nothing.text == ",".join(HEADER) + "\r\n"


async def test_bad_filters_are_refused(http: httpx.AsyncClient, world: World) -> None:
    for params in ({"courseId": "nope"}, {"since": "yesterday"}):
        response = await _export(http, world.admin, **params)
        assert response.status_code == 400, params
        assert len(response.json()["details"]) == 1


async def _in_export(server: IsolatedServer) -> int:
    """How many of the server's connections are inside an export's transaction."""
    rows = await _sql(
        server.database_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'sevenp' AND xact_start IS NOT NULL"
        " AND (query LIKE 'FETCH%%' OR query LIKE 'DECLARE%%' OR query LIKE 'BEGIN%%')",
    )
    return int(rows[0][0])


async def test_the_first_rows_arrive_while_the_cursor_is_still_being_read(
    http: httpx.AsyncClient, server: IsolatedServer, world: World
) -> None:
    async with http.stream("GET", "/api/analytics/export", headers=world.admin.auth) as response:
        assert response.status_code == 200
        chunks = response.aiter_bytes()
        first = await anext(chunks)
        assert first.startswith(b"enrollment_id,")
        # The server has sent rows and still holds the cursor open for the rest.
        await eventually(lambda: _in_export(server), within=10)
        received = [first]
        received.extend([chunk async for chunk in chunks])
    body = b"".join(received)
    assert len(first) < len(body) // 100
    assert body.count(b"\r\n") == 1 + BULK_ROWS + 3
    await eventually(lambda: _no_export_open(server), within=10)


async def _no_export_open(server: IsolatedServer) -> bool:
    return await _in_export(server) == 0


async def test_clients_leaving_midway_leave_the_pool_whole(
    http: httpx.AsyncClient, server: IsolatedServer, world: World
) -> None:
    for round_ in range(3 * POOL_MAX):
        async with http.stream(
            "GET", "/api/analytics/export", headers=world.admin.auth
        ) as response:
            assert response.status_code == 200, (round_, await response.aread())
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                # Every other client leaves at once, the rest after half a megabyte.
                if round_ % 2 == 0 or read > 500_000:
                    break
    await eventually(lambda: _no_export_open(server), within=15)
    for _ in range(2 * POOL_MAX):
        complete = await _export(http, world.admin, courseId=world.small["id"])
        assert complete.status_code == 200
        assert len(_rows(complete.content)) == 3
    assert (await http.get("/api/users/profile", headers=world.admin.auth)).status_code == 200


@pytest.fixture
async def database(server: IsolatedServer) -> AsyncIterator[Database]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        server.database_url, min_size=2, max_size=2, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    try:
        yield Database(pool)
    finally:
        await pool.close()


def _idle(database: Database) -> bool:
    stats = database.pool.get_stats()
    return stats.get("pool_available", 0) == 2 and stats.get("requests_waiting", 0) == 0


async def test_a_stream_closed_between_chunks_returns_its_connection(
    database: Database, world: World
) -> None:
    stream = stream_enrollments_csv(database, course_id=world.bulk["id"])
    await anext(stream)
    await anext(stream)
    assert database.pool.get_stats()["pool_available"] == 1
    await stream.aclose()
    assert _idle(database)


async def test_a_stream_cancelled_anywhere_returns_its_connection(
    database: Database, world: World
) -> None:
    async def read(started: anyio.Event) -> None:
        async for _chunk in stream_enrollments_csv(database):
            started.set()

    for attempt in range(10):
        started = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, started)
            await started.wait()
            # Cancelled a few scheduling steps later each time: between chunks, mid-fetch.
            for _ in range(attempt):
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
        # A connection cancelled mid-fetch is closed and replaced rather than reused.
        await eventually(lambda: _idle(database), within=10)
    async with database.pool.connection() as conn:
        assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)


async def test_the_gradebook_scores_each_assessment_by_its_policy(
    server: IsolatedServer, database: Database
) -> None:
    course = await _gradebook_course(server.database_url)
    data = b"".join([chunk async for chunk in stream_gradebook_csv(database, course)])
    lines = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert lines == [
        ["name", "email", "status", "progress", "Highest", "Latest", "'@First", "Average",
         "course_grade"],
        ["Ada Alpha", "alpha@grades.example", "active", "40.0", "9.0", "5.0", "12.0", "7.5",
         "67.0"],
        ["'=cmd Beta", "beta@grades.example", "completed", "100.0", "", "7.0", "15.0", "",
         "44.0"],
    ]  # fmt: skip
    assert _idle(database)


async def _gradebook_course(url: str) -> str:
    """A course with four published assessments, one of each policy, and an unpublished one.

    Alpha: highest of 4, 9, 6 -> 9; latest of 8, 5 -> 5; first of 12, 20 -> 12; average of
    6, 9 -> 7.5: (9 + 5 + 12 + 7.5) / 50 = 67 %. Beta: latest 7, first of 15, 3 -> 15,
    nothing else: 22 / 50 = 44 %.
    """
    tag = uuid.uuid4().hex[:8]
    rows = await _sql(
        url,
        "WITH t AS (INSERT INTO users (email, password_hash, first_name, last_name, role)"
        "   VALUES (%(teacher)s, 'x', 'Tess', 'Teacher', 'teacher') RETURNING id)"
        " INSERT INTO courses (slug, title, description, category, level, duration,"
        "   learning_objectives, instructor_id, status, published_at)"
        " SELECT %(slug)s, 'Graded course', 'A course with every scoring policy.', 'testing',"
        "   'beginner', 60, '{Grade}', t.id, 'published', now() FROM t RETURNING id::text",
        {"teacher": f"tess-{tag}@grades.example", "slug": f"graded-{tag}"},
    )
    course = str(rows[0][0])
    await _sql(
        url,
        "WITH s AS (INSERT INTO users (email, password_hash, first_name, last_name) VALUES"
        "   ('alpha@grades.example', 'x', 'Ada', 'Alpha'),"
        "   ('beta@grades.example', 'x', '=cmd', 'Beta') RETURNING id, last_name)"
        " INSERT INTO enrollments (user_id, course_id, status, progress, completed_at)"
        " SELECT id, %(course)s, CASE last_name WHEN 'Beta' THEN 'completed' ELSE 'active' END,"
        "   CASE last_name WHEN 'Beta' THEN 100 ELSE 40 END,"
        "   CASE last_name WHEN 'Beta' THEN now() END FROM s",
        {"course": course},
    )
    # (title, policy, max score, published, created in order, {student: [scores by attempt]})
    assessments = [
        ("Highest", "highest", 10, True, {"Alpha": [4, 9, 6]}),
        ("Latest", "latest", 10, True, {"Alpha": [8, 5], "Beta": [7]}),
        ("@First", "first", 20, True, {"Alpha": [12, 20], "Beta": [15, 3]}),
        ("Average", "average", 10, True, {"Alpha": [6, 9]}),
        ("Draft", "highest", 10, False, {"Alpha": [10]}),
    ]
    for position, (title, policy, max_score, published, scores) in enumerate(assessments):
        found = await _sql(
            url,
            "INSERT INTO assessments (course_id, title, kind, scoring_policy, max_score,"
            " published, created_at) VALUES (%s, %s, 'quiz', %s, %s, %s,"
            " now() - interval '1 day' + %s * interval '1 minute') RETURNING id::text",
            (course, title, policy, max_score, published, position),
        )
        for last_name, attempts in scores.items():
            for number, score in enumerate(attempts, start=1):
                await _sql(
                    url,
                    "WITH e AS (SELECT e.id, e.user_id FROM enrollments e JOIN users u"
                    "   ON u.id = e.user_id WHERE e.course_id = %(course)s"
                    "   AND u.last_name = %(last)s),"
                    " t AS (INSERT INTO attempts (assessment_id, enrollment_id, user_id, number)"
                    "   SELECT %(a)s, e.id, e.user_id, %(n)s FROM e"
                    "   RETURNING id, enrollment_id, user_id)"
                    " INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id,"
                    "   attempt_number, max_score, raw_score, score, status)"
                    " SELECT t.id, %(a)s, t.enrollment_id, t.user_id, %(n)s, %(max)s, %(s)s,"
                    "   %(s)s, 'graded' FROM t",
                    {"course": course, "last": last_name, "a": found[0][0], "n": number,
                     "max": max_score, "s": score},
                )  # fmt: skip
    return course


MEMORY_ROWS = 1_000_000
MEMORY_COURSES = 100
RSS_GROWTH_LIMIT = 50 * 1024 * 1024

_GENERATE = """
WITH t AS (INSERT INTO users (email, password_hash, first_name, last_name, role)
    VALUES ('bulk-teacher@example.test', 'x', 'Bulk', 'Teacher', 'teacher') RETURNING id)
INSERT INTO courses (slug, title, description, category, level, duration, learning_objectives,
    instructor_id, status, published_at)
SELECT 'bulk-' || i, 'Bulk course ' || i, 'A generated course for the export.', 'bulk',
    'beginner', 60, '{Learn}', t.id, 'published', now()
FROM t, generate_series(1, %(courses)s) AS i;

INSERT INTO users (email, password_hash, first_name, last_name)
SELECT 'learner-' || i || '@example.test', 'x', 'Learner', 'Number ' || i
FROM generate_series(1, %(students)s) AS i;

INSERT INTO enrollments (user_id, course_id, status, progress, enrolled_at)
SELECT u.id, c.id, 'active', (random() * 99)::numeric(5, 2),
    now() - random() * interval '365 days'
FROM users u CROSS JOIN courses c WHERE u.role = 'student';
ANALYZE;
"""


def _rss(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


@pytest.fixture(scope="module")
def big_server(postgres_admin_url: str, redis_url: str) -> Iterator[LiveServer]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in _GENERATE.split(";\n"):
                if statement.strip():
                    conn.execute(
                        statement,
                        {"courses": MEMORY_COURSES, "students": MEMORY_ROWS // MEMORY_COURSES},
                    )
        server = LiveServer({"DATABASE_URL": url, "REDIS_URL": redis_url}).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_million_rows_stream_in_flat_memory(big_server: LiveServer) -> None:
    email = unique_email("admin")
    made = create_user_cli({**os.environ, **big_server.env}, email=email, role="admin")
    assert made.returncode == 0, made.stderr
    headers = {"Accept-Encoding": "identity"}
    async with httpx.AsyncClient(base_url=big_server.base_url, timeout=120) as http:
        admin = await login(http, email)
        headers.update(admin.auth)
        warm = await http.get(
            "/api/analytics/export", headers=headers, params={"since": "2100-01-01T00:00:00"}
        )
        assert warm.status_code == 200
        baseline = peak = _rss(big_server.pid)
        lines = 0
        received = 0
        async with http.stream("GET", "/api/analytics/export", headers=headers) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                lines += chunk.count(b"\n")
                received += len(chunk)
                if received > 4_000_000:
                    peak = max(peak, _rss(big_server.pid))
                    received = 0
        peak = max(peak, _rss(big_server.pid))
    assert lines == 1 + MEMORY_ROWS
    growth = peak - baseline
    print(f"server RSS {baseline / 2**20:.1f} MB -> peak {peak / 2**20:.1f} MB "
          f"(+{growth / 2**20:.1f} MB) over {MEMORY_ROWS:,} rows")  # fmt: skip
    assert growth < RSS_GROWTH_LIMIT
