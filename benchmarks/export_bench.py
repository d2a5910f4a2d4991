"""The enrollments export measured against ``COPY (the same query) TO STDOUT`` in the same run.

The export scenario runs on a database of its own (``<bench db>_export``) holding only the
generated enrollments (``EXPORT_COURSES`` courses x as many students as the profile's row count
needs, written with ``generate_series``), served by a server of its own started like the server
under test. Each round reads the whole export over HTTP as an admin (``GET
/api/analytics/export``, the body read as it arrives) and the same rows with psycopg's
``cursor.copy`` of ``COPY (exports.enrollments) TO STDOUT (FORMAT csv, HEADER)``, in turn first,
so both see the same background load. Per read: time to the first body byte, rows (lines less
the header), bytes and seconds; for the export also the server's RSS (its whole process tree,
sampled every 0.1 s) above its mean over the second before the request.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.engines import server_metrics
from benchmarks.sampler import ProcessSampler, ProcessSource, Samples

EXPORT_COURSES = 100
EXPORT_PATH = "/api/analytics/export"
READ_SIZE = 1 << 16

_GENERATE = """
INSERT INTO users (email, password_hash, first_name, last_name, role)
VALUES ('export-teacher@bench.example', 'x', 'Export', 'Teacher', 'teacher');

INSERT INTO courses (slug, title, description, category, level, duration, learning_objectives,
    instructor_id, status, published_at)
SELECT 'export-' || i, 'Export course ' || i, 'A generated course for the export.', 'export',
    'beginner', 60, '{Learn}', (SELECT id FROM users WHERE role = 'teacher'), 'published', now()
FROM generate_series(1, %(courses)s) AS i;

INSERT INTO users (email, password_hash, first_name, last_name)
SELECT 'export-learner-' || i || '@bench.example', 'x', 'Learner', 'Number ' || i
FROM generate_series(1, %(students)s) AS i;

INSERT INTO enrollments (user_id, course_id, status, progress, enrolled_at)
SELECT u.id, c.id, 'active', (random() * 99)::real, now() - random() * interval '365 days'
FROM users u CROSS JOIN courses c WHERE u.role = 'student';

ANALYZE
"""


def seed_enrollments(dsn: str, rows: int, courses: int = EXPORT_COURSES) -> int:
    """``rows`` enrollments (rounded up to whole students) in ``dsn``; returns their number."""
    students = -(-rows // courses)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _GENERATE.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"courses": courses, "students": students})
        found = conn.execute("SELECT count(*) FROM enrollments").fetchone()
    return int(found[0]) if found else 0


@dataclass(frozen=True)
class Read:
    """One full read of the rows."""

    status: int
    rows: int
    bytes: int
    seconds: float
    first_byte_ms: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def read_export(host: str, port: int, token: str, path: str = EXPORT_PATH) -> Read:
    """The export over HTTP, its body read as it arrives."""
    conn = http.client.HTTPConnection(host, port, timeout=300)
    try:
        started = time.perf_counter()
        conn.request(
            "GET",
            path,
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
        )
        response = conn.getresponse()
        first = 0.0
        lines = size = 0
        while chunk := response.read1(READ_SIZE):
            if not first:
                first = time.perf_counter()
            lines += chunk.count(b"\n")
            size += len(chunk)
        ended = time.perf_counter()
    finally:
        conn.close()
    return Read(
        status=response.status,
        rows=max(0, lines - 1),
        bytes=size,
        seconds=ended - started,
        first_byte_ms=((first or ended) - started) * 1000,
    )


def read_copy(dsn: str) -> Read:
    """The export's statement through ``COPY (...) TO STDOUT``, as CSV with a header."""
    from server.db.queries.exports import ENROLLMENTS

    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(sql.SQL(ENROLLMENTS.sql))
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        first = 0.0
        lines = size = 0
        with cur.copy(statement, {"course": None, "since": None}) as copy:
            for block in copy:
                if not first:
                    first = time.perf_counter()
                lines += bytes(block).count(b"\n")
                size += len(block)
        ended = time.perf_counter()
    return Read(
        status=200,
        rows=max(0, lines - 1),
        bytes=size,
        seconds=ended - started,
        first_byte_ms=((first or ended) - started) * 1000,
    )


def _export_with_rss(
    read: Callable[[], Read], source: ProcessSource, idle_s: float = 1.0
) -> tuple[Read, float, Samples]:
    """``read()`` with the server sampled: (the read, RSS growth in bytes, its samples)."""
    with ProcessSampler(source, interval=0.1) as idle:
        time.sleep(idle_s)
    baseline = idle.samples.rss_mean
    with ProcessSampler(source, interval=0.1) as sampler:
        done = read()
    peak = max(sampler.samples.rss_bytes, default=0)
    return done, max(0.0, peak - baseline), sampler.samples


def measure_export(
    host: str, port: int, token: str, dsn: str, source: ProcessSource, *, rows: int, rounds: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """``rounds`` x (the export over HTTP and COPY of the same query, each first in turn)."""
    warm = read_export(host, port, token, EXPORT_PATH + "?since=2100-01-01T00:00:00Z")
    if warm.status != 200:
        raise RuntimeError(f"GET {EXPORT_PATH} answered {warm.status}")
    exports: list[Read] = []
    copies: list[Read] = []
    growth: list[float] = []
    samples = Samples()
    for index in range(rounds):
        if index % 2 == 0:
            copies.append(read_copy(dsn))
        done, grown, sampled = _export_with_rss(lambda: read_export(host, port, token), source)
        exports.append(done)
        growth.append(grown)
        samples.extend(sampled)
        if index % 2 == 1:
            copies.append(read_copy(dsn))
    ratios = [e.rows_per_s / c.rows_per_s for e, c in zip(exports, copies, strict=True)]
    errors = sum(1 for e in exports if e.status != 200 or e.rows != rows)
    metrics: dict[str, float] = {
        "rows": rows,
        "rounds": rounds,
        "rps": round(statistics.median(e.rows_per_s for e in exports), 1),
        "ceiling_rps": round(statistics.median(c.rows_per_s for c in copies), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "ttfb_ms": round(max(e.first_byte_ms for e in exports), 1),
        "ttfb_median_ms": round(statistics.median(e.first_byte_ms for e in exports), 1),
        "copy_ttfb_ms": round(statistics.median(c.first_byte_ms for c in copies), 1),
        "seconds": round(statistics.median(e.seconds for e in exports), 2),
        "copy_seconds": round(statistics.median(c.seconds for c in copies), 2),
        "rss_growth_mib": round(max(growth) / 2**20, 1),
        "requests": len(exports),
        "errors": errors,
    }
    metrics.update(server_metrics(samples))
    details = {
        "exports": [asdict(e) for e in exports],
        "copies": [asdict(c) for c in copies],
        "rss_growth_mib": [round(g / 2**20, 1) for g in growth],
        "path": EXPORT_PATH,
    }
    return metrics, details
