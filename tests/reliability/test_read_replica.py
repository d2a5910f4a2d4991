"""A real streaming replica (`pg_basebackup -R`, hot standby) behind `DATABASE_READ_URL`.

With the replica's replay paused, a teacher who just graded sees the grade in the gradebook
(on another instance too, by the mark announced on the bus) and finds the draft they just
made in a search, while an admin with no recent write is shown
the replica's older state by the same requests: they ran on the replica. The replica's
statement log shows every routed read (search, gradebook, analytics, exports) ran there.
Stopped, the replica costs no failed read: they fall back to the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from server.db.migrate import apply_migrations
from server.db.queries import analytics, enrollments, exports, submissions
from server.db.queries import courses as course_queries
from server.db.statement import Statement
from tests.support.accounts import Account, create_user_cli, login, register, unique_email
from tests.support.courses import create_course, published_course
from tests.support.live_server import LiveServer
from tests.support.services import free_port, with_database
from tests.support.waiting import eventually, eventually_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass
class Cluster:
    primary_url: str
    replica_url: str
    replica_log: Path
    stop_replica: Any


def _as_postgres_user(user: str | None) -> dict[str, Any]:
    return {} if user is None else {"user": user}


@contextlib.contextmanager
def streaming_cluster() -> Iterator[Cluster]:
    """A private primary (pgserver) with a database migrated, and a hot standby made from it
    with `pg_basebackup -R`, on a socket of its own, logging every statement."""
    import pgserver
    from pgserver._commands import POSTGRES_BIN_PATH

    with tempfile.TemporaryDirectory(prefix="sevenp-replica-") as tmp:
        root = Path(tmp)
        root.chmod(0o777)
        server = pgserver.get_server(root / "primary", cleanup_mode="stop")
        user = server.system_user
        run = _as_postgres_user(user)
        try:
            admin_url = server.get_uri("postgres")
            name = f"sevenp_replica_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            primary_url = with_database(admin_url, name)
            asyncio.run(apply_migrations(primary_url))
            socket_dir = str(psycopg.conninfo.conninfo_to_dict(admin_url)["host"])
            data = root / "replica"
            data.mkdir(mode=0o700)
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(data, entry.pw_uid, entry.pw_gid)
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream",
                 "-h", socket_dir, "-U", "postgres", "-c", "fast"],
                check=True, capture_output=True, timeout=120, **run,
            )  # fmt: skip
            port = free_port()
            log = data / "log"
            pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
            options = (
                f'-h "" -k {data} -p {port} -c hot_standby=on -c log_statement=all'
                " -c log_line_prefix='%a|'"
            )
            subprocess.run(
                [pg_ctl, "-D", str(data), "-w", "-o", options, "-l", str(log), "start"],
                check=True,
                capture_output=True,
                timeout=60,
                **run,
            )
            stopped = False

            def stop_replica() -> None:
                nonlocal stopped
                if not stopped:
                    subprocess.run(
                        [pg_ctl, "-D", str(data), "-w", "-m", "fast", "stop"],
                        check=True, capture_output=True, timeout=60, **run,
                    )  # fmt: skip
                    stopped = True

            replica_url = psycopg.conninfo.make_conninfo(
                host=str(data), port=port, user="postgres", dbname=name
            )
            try:
                yield Cluster(primary_url, replica_url, log, stop_replica)
            finally:
                stop_replica()
        finally:
            server.cleanup()
            shutil.rmtree(root / "replica", ignore_errors=True)


def _one(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]


def _caught_up(cluster: Cluster) -> bool:
    written = _one(cluster.primary_url, "SELECT pg_current_wal_lsn()::text")
    return bool(
        _one(cluster.replica_url, f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn")
    )


def _sql_head(statement: Statement) -> str:
    """The statement's text up to its first parameter: as it appears in the server's log."""
    return statement.sql.split("%", 1)[0][:120]


async def _grade_cell(http: httpx.AsyncClient, who: Account, course: str, student: str) -> Any:
    book = await http.get(f"/api/courses/{course}/gradebook", headers=who.auth)
    assert book.status_code == 200, book.text
    row = next(r for r in book.json()["items"] if r["userId"] == student)
    return row["scores"][0]["score"]


async def _csv_line(http: httpx.AsyncClient, who: Account, course: str, email: str) -> list[str]:
    response = await http.get(
        f"/api/courses/{course}/gradebook", headers={**who.auth, "accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    return next(r for r in rows if r[1] == email)


async def _search_titles(http: httpx.AsyncClient, who: Account, term: str) -> list[str]:
    found = await http.get("/api/courses", headers=who.auth, params={"q": term, "status": "draft"})
    assert found.status_code == 200, found.text
    return [c["title"] for c in found.json()["items"]]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with streaming_cluster() as made:
        yield made


async def test_routed_reads_use_the_replica_writers_read_their_writes_and_it_may_stop(
    cluster: Cluster, redis_url: str
) -> None:
    env = {
        "DATABASE_URL": cluster.primary_url,
        "DATABASE_READ_URL": cluster.replica_url,
        "DATABASE_READ_MAX_LAG_SECONDS": "300",
        "REDIS_URL": redis_url,
        "DB_POOL_MIN": "1",
        "DB_TIMEOUT_SECONDS": "4",
        "HEALTH_PROBE_TIMEOUT_SECONDS": "3",
    }
    server = LiveServer(env).start(timeout=90)
    try:
        other = LiveServer(env).start(timeout=90)
        try:
            await _scenario(cluster, server, other)
        finally:
            other.stop()
    finally:
        server.stop()


async def _scenario(cluster: Cluster, server: LiveServer, other: LiveServer) -> None:
    cli_env = {**os.environ, **server.env}
    emails = {role: unique_email(role) for role in ("admin", "teacher")}
    for role, email in emails.items():
        assert create_user_cli(cli_env, email=email, role=role).returncode == 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
        admin, teacher = await login(http, emails["admin"]), await login(http, emails["teacher"])
        course, _ = await published_course(http, teacher, lessons=1)
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
        assessment = made.json()
        student = await register(http)
        enrolled = await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
        assert enrolled.status_code == 201
        submitted = await http.post(
            f"/api/assessments/{assessment['id']}/submissions",
            headers=student.auth,
            json={"answers": [{"questionId": assessment["questions"][0]["id"], "value": "x"}]},
        )
        assert submitted.status_code == 201, submitted.text

        # The replica has every write so far, and the server has probed it since.
        eventually_sync(lambda: _caught_up(cluster), within=30)
        await asyncio.sleep(1.5)
        # Submitted, not yet reviewed: 0 points so far.
        assert await _grade_cell(http, teacher, course["id"], student.user_id) == 0
        ungraded_line = await _csv_line(http, admin, course["id"], student.email)

        _one(cluster.replica_url, "SELECT pg_wal_replay_pause()")
        eventually_sync(
            lambda: _one(cluster.replica_url, "SELECT pg_get_wal_replay_pause_state()") == "paused",
            within=10,
        )
        graded = await http.post(
            f"/api/submissions/{submitted.json()['id']}/grade",
            headers=teacher.auth,
            json={"questionScores": [{"questionId": assessment["questions"][0]["id"], "score": 6}]},
        )
        assert graded.status_code == 200, graded.text
        draft_term = f"replicadraft{uuid.uuid4().hex[:8]}"
        await create_course(http, teacher, title=f"Course {draft_term}")
        courses_on_primary = _one(cluster.primary_url, "SELECT count(*) FROM courses")

        # The writer reads their writes (from the primary)...
        assert await _grade_cell(http, teacher, course["id"], student.user_id) == 6
        assert await _csv_line(http, teacher, course["id"], student.email) != ungraded_line
        assert await _search_titles(http, teacher, draft_term) == [f"Course {draft_term}"]
        # On another instance too, once the bus has brought the teacher's mark.
        async with httpx.AsyncClient(base_url=other.base_url, timeout=20) as elsewhere:
            assert await _grade_cell(elsewhere, admin, course["id"], student.user_id) == 0

            async def graded_elsewhere() -> bool:
                cell = await _grade_cell(elsewhere, teacher, course["id"], student.user_id)
                return bool(cell == 6)

            await eventually(graded_elsewhere, within=5)
        # ...while a reader with no recent write is shown the replica's older state.
        assert await _grade_cell(http, admin, course["id"], student.user_id) == 0
        assert await _csv_line(http, admin, course["id"], student.email) == ungraded_line
        assert await _search_titles(http, admin, draft_term) == []
        overview = await http.get("/api/analytics/overview", headers=admin.auth)
        assert overview.status_code == 200
        assert overview.json()["totals"]["courses"] == courses_on_primary - 1
        figures = await http.get(f"/api/courses/{course['id']}/analytics", headers=admin.auth)
        assert figures.status_code == 200, figures.text
        export = await http.get("/api/analytics/export", headers=admin.auth)
        assert export.status_code == 200
        assert student.email in export.text

        logged = cluster.replica_log.read_text(errors="replace")
        reads = [line for line in logged.splitlines() if line.startswith("sevenp-reads|")]
        for statement in (
            course_queries.SEARCH["relevance"],
            submissions.GRADEBOOK,
            exports.GRADEBOOK,
            analytics.OVERVIEW,
            enrollments.COURSE_ANALYTICS,
            exports.ENROLLMENTS,
        ):
            head = _sql_head(statement)
            assert any(head in line for line in reads), f"{statement.name} not on the replica"
        # The writes, and reads outside the routed areas, never reached the replica.
        assert not any(_sql_head(course_queries.GET_VISIBLE) in line for line in logged)

        cluster.stop_replica()
        for who in (admin, teacher):
            assert await _grade_cell(http, who, course["id"], student.user_id) == 6
        assert await _csv_line(http, admin, course["id"], student.email) != ungraded_line
        assert await _search_titles(http, admin, draft_term) == [f"Course {draft_term}"]
        overview = await http.get("/api/analytics/overview", headers=admin.auth)
        assert overview.json()["totals"]["courses"] == courses_on_primary
        assert (await http.get("/api/analytics/export", headers=admin.auth)).status_code == 200

        async def replica_reported_down() -> bool:
            report = (await http.get("/api/system/health", headers=admin.auth)).json()
            found = [c for c in report["checks"] if c["name"] == "postgres_replica"]
            return bool(found) and found[0]["status"] == "down"

        await eventually(replica_reported_down, within=10)
        assert (await http.get("/health/ready")).status_code == 200
