"""`sevenp seed-demo`: the data set it makes holds together (counters, progress, visibility)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from tests.support.live_server import ROOT


def test_seed_demo_makes_a_consistent_data_set(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "seed-demo", "--teachers", "3", "--students",
         "40", "--courses", "30", "--lessons", "4", "--enrollments", "3"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        env={**os.environ, "DATABASE_URL": database_url, "SEVENP_ENV": "test"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = result.stdout.split("demo data ", 1)[1].split(":", 1)[0]
    with psycopg.connect(database_url) as conn:
        courses = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'published'),"
            " bool_and(lesson_count = (SELECT count(*) FROM lessons l WHERE l.course_id = c.id)),"
            " bool_and(total_enrollments ="
            "   (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id)),"
            " bool_and(review_count = (SELECT count(*) FROM reviews r WHERE r.course_id = c.id))"
            " FROM courses c WHERE slug LIKE %s",
            (f"demo-{run}-%",),
        ).fetchone()
        assert courses is not None
        total, published, lessons_agree, enrollments_agree, reviews_agree = courses
        assert total == 30
        assert 0 < published <= 30
        assert lessons_agree
        assert enrollments_agree
        assert reviews_agree
        students = conn.execute(
            "SELECT count(DISTINCT u.id), count(e.id),"
            " bool_and(e.status <> 'completed' OR e.progress = 100)"
            " FROM users u LEFT JOIN enrollments e ON e.user_id = u.id WHERE u.email LIKE %s",
            (f"student-{run}-%",),
        ).fetchone()
        assert students is not None
        assert students[0] == 40
        assert 0 < students[1] <= 120
        assert students[2]
