"""A realistic demo data set: teachers, students, courses with lessons, enrollments with
progress, reviews, a quiz per course and graded submissions, made in batches of set-based
statements (seconds for the default).

Every account of a run shares one password, hashed once; `DemoSizes` sets how much is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from server.db.queries import demo as q
from server.db.unit import Database
from server.security.passwords import PasswordHasher

DEMO_PASSWORD = "demo passphrase for 7p"  # noqa: S105 - printed for the demo, on purpose
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class DemoSizes:
    teachers: int = 20
    students: int = 500
    courses: int = 1000
    lessons_per_course: int = 5
    enrollments_per_student: int = 4
    published_share: float = 0.9
    review_share: float = 0.4
    submission_share: float = 0.6


@dataclass(frozen=True, slots=True)
class DemoRun:
    run: str
    password: str
    first_teacher: str
    first_student: str


Advance = Callable[[str, int], None]
"""Told each step's name and how many units of work it finished."""


def work_units(sizes: DemoSizes) -> int:
    """How many units `seed_demo` reports in all, for a progress bar's total."""
    return sizes.teachers + sizes.students + 3 * sizes.courses + sizes.students + 4


async def seed_demo(
    database: Database, hasher: PasswordHasher, sizes: DemoSizes, advance: Advance
) -> DemoRun:
    run = uuid.uuid4().hex[:6]
    password_hash = await hasher.hash(DEMO_PASSWORD)
    async with database.unit() as uow:
        await uow.value(q.SEED, {"seed": 0.7})
    for role, count in (("teacher", sizes.teachers), ("student", sizes.students)):
        for first in range(1, count + 1, _BATCH):
            last = min(count, first + _BATCH - 1)
            async with database.unit() as uow:
                await uow.execute(
                    q.USERS,
                    {"role": role, "run": run, "hash": password_hash, "first": first, "last": last},
                )
            advance(f"{role}s", last - first + 1)
    for first in range(1, sizes.courses + 1, _BATCH):
        last = min(sizes.courses, first + _BATCH - 1)
        async with database.unit() as uow:
            await uow.execute(q.COURSES, {"run": run, "first": first, "last": last})
        advance("courses", last - first + 1)
    for done in range(0, sizes.courses, _BATCH):
        async with database.unit() as uow:
            await uow.execute(
                q.LESSONS,
                {"run": run, "batch": _BATCH, "per_course": sizes.lessons_per_course},
            )
        advance("lessons", min(_BATCH, sizes.courses - done))
    async with database.unit() as uow:
        await uow.execute(q.PUBLISH, {"run": run, "share": sizes.published_share})
    advance("publishing", 1)
    for offset in range(0, sizes.students, _BATCH):
        async with database.unit() as uow:
            await uow.execute(
                q.ENROLLMENTS,
                {
                    "run": run,
                    "offset": offset,
                    "batch": _BATCH,
                    "per_student": sizes.enrollments_per_student,
                },
            )
        advance("enrollments", min(_BATCH, sizes.students - offset))
    async with database.unit() as uow:
        await uow.execute(q.PROGRESS, {"run": run})
    advance("progress", 1)
    async with database.unit() as uow:
        await uow.execute(q.REVIEWS, {"run": run, "share": sizes.review_share})
    advance("reviews", 1)
    for done in range(0, sizes.courses, _BATCH):
        async with database.unit() as uow:
            await uow.execute(q.ASSESSMENTS, {"run": run, "batch": _BATCH})
        advance("assessments", min(_BATCH, sizes.courses - done))
    async with database.unit() as uow:
        await uow.execute(q.SUBMISSIONS, {"run": run, "share": sizes.submission_share})
    advance("submissions", 1)
    return DemoRun(
        run=run,
        password=DEMO_PASSWORD,
        first_teacher=f"teacher-{run}-1@demo.example",
        first_student=f"student-{run}-1@demo.example",
    )
