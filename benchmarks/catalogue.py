"""The learning domain's data for a run: ``seed_demo`` in the server's database, then what the
scenarios need to know of it, and enrollments for the seeded benchmark students."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import psycopg
from psycopg_pool import AsyncConnectionPool

from benchmarks.course_requests import Catalogue
from server.db.unit import Database
from server.security.passwords import Argon2Settings, PasswordHasher
from server.services.demo_data import DemoSizes, seed_demo


async def seed_catalogue(dsn: str, sizes: DemoSizes) -> Catalogue:
    """Seed the demo data set into ``dsn`` and return its courses."""
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True)
    try:
        hasher = PasswordHasher(Argon2Settings(), max_concurrency=1)
        run = await seed_demo(
            Database(pool, slow_query_ms=60_000), hasher, sizes, lambda _step, _done: None
        )
    finally:
        await pool.close()
    return await load_catalogue(dsn, run.run)


async def load_catalogue(dsn: str, run: str) -> Catalogue:
    """The courses of demo run ``run``: published ids, their lessons by position, all titles."""
    pattern = f"demo-{run}-%"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT id::text, title, status = 'published' FROM courses WHERE slug LIKE %s"
            " ORDER BY slug",
            (pattern,),
        )
        courses = await cur.fetchall()
        cur = await conn.execute(
            "SELECT l.course_id::text, l.id::text FROM lessons l JOIN courses c"
            " ON c.id = l.course_id WHERE c.slug LIKE %s AND c.status = 'published'"
            " ORDER BY l.course_id, l.position",
            (pattern,),
        )
        lessons: defaultdict[str, list[str]] = defaultdict(list)
        for course_id, lesson_id in await cur.fetchall():
            lessons[course_id].append(lesson_id)
    return Catalogue(
        published=tuple(c[0] for c in courses if c[2]),
        lessons={k: tuple(v) for k, v in lessons.items()},
        titles=tuple(c[1] for c in courses),
    )


async def insert_enrollments(dsn: str, plan: Mapping[str, tuple[str, ...]]) -> None:
    """Active enrollments, no lesson completed, for each user and course of ``plan``; the
    courses' enrollment counts follow."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.cursor() as cur:
            await cur.execute(
                "CREATE TEMP TABLE bench_enrollments (user_id uuid, course_id uuid) ON COMMIT DROP"
            )
            async with cur.copy("COPY bench_enrollments (user_id, course_id) FROM STDIN") as copy:
                for user_id, courses in plan.items():
                    for course_id in courses:
                        await copy.write_row((user_id, course_id))
            await cur.execute(
                "INSERT INTO enrollments (user_id, course_id)"
                " SELECT user_id, course_id FROM bench_enrollments"
            )
            await cur.execute(
                "UPDATE courses c SET total_enrollments = c.total_enrollments + n.count"
                " FROM (SELECT course_id, count(*) FROM bench_enrollments GROUP BY course_id) n"
                " WHERE c.id = n.course_id"
            )
        await conn.commit()
