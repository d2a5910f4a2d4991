"""Requests of the learning-domain scenarios, built from the seeded catalogue (pure functions).

Closed-loop scenarios whose every request differs (a new student-course pair per enrollment, a
new lesson per completion, a term per search) are written as rows ``<path>\\t<token>`` that
``lua/rows.lua`` sends once each. Open-loop sessions get their values as pools (drawn at random)
and queues (taken in order) that fill the placeholders of the mix's paths.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

Row = tuple[str, str]  # (path, bearer token)

BROWSE_QUERIES: tuple[str, ...] = (
    "page=1",
    "page=2",
    "sort=popular",
    "sort=rating",
    "sort=newest",
    "category=programming",
    "category=data&sort=rating",
    "level=beginner",
)
"""What a student browsing the catalogue without a search term asks for."""


@dataclass(frozen=True)
class Catalogue:
    """The seeded courses the scenarios draw from."""

    published: tuple[str, ...]  # ids of published courses
    lessons: Mapping[str, tuple[str, ...]]  # published course id -> lesson ids by position
    titles: tuple[str, ...]  # titles of every seeded course


@dataclass(frozen=True)
class Student:
    """A seeded student with a token and the courses they are enrolled in."""

    user_id: str
    token: str
    enrolled: tuple[str, ...]


def course_path(course_id: str) -> str:
    return f"/api/courses/{course_id}"


def search_path(term: str) -> str:
    return "/api/courses?q=" + quote(term, safe="")


def plan_enrollments(
    user_ids: Sequence[str], published: Sequence[str], per_user: int, rng: random.Random
) -> dict[str, tuple[str, ...]]:
    """``per_user`` distinct published courses for each user."""
    if per_user > len(published):
        raise ValueError(f"{per_user} enrollments per user, {len(published)} published courses")
    return {user: tuple(rng.sample(published, per_user)) for user in user_ids}


def read_rows(course_id: str, tokens: Sequence[str]) -> list[Row]:
    """One course read by each token in turn."""
    return [(course_path(course_id), token) for token in tokens]


def search_rows(terms: Sequence[str], tokens: Sequence[str]) -> list[Row]:
    """Every term once, with tokens in turn (as many rows as the longer of the two)."""
    n = max(len(terms), len(tokens))
    return [(search_path(terms[i % len(terms)]), tokens[i % len(tokens)]) for i in range(n)]


def enroll_rows(
    students: Sequence[Student], published: Sequence[str], count: int, rng: random.Random
) -> list[Row]:
    """``count`` enrollments, each a student-course pair that is neither enrolled nor repeated;
    students take turns, so neighbouring requests are different students'."""
    if not students:
        raise ValueError("no students")
    taken = {s.user_id: set(s.enrolled) for s in students}
    rows: list[Row] = []
    while len(rows) < count:
        before = len(rows)
        for student in students:
            if len(rows) == count:
                break
            mine = taken[student.user_id]
            if len(mine) == len(published):
                continue
            course = rng.choice(published)
            while course in mine:
                course = rng.choice(published)
            mine.add(course)
            rows.append((course_path(course) + "/enroll", student.token))
        if len(rows) == before:
            break  # every student is enrolled in every course
    return rows


def completion_rows(students: Sequence[Student], lessons: Mapping[str, Sequence[str]]) -> list[Row]:
    """Every lesson of every enrollment once, first lessons first: neighbouring requests are of
    different enrollments, so they do not queue on one enrollment's row lock."""
    rows: list[Row] = []
    position = 0
    while True:
        added = False
        for student in students:
            for course in student.enrolled:
                course_lessons = lessons.get(course, ())
                if position < len(course_lessons):
                    lesson = course_lessons[position]
                    rows.append((f"{course_path(course)}/lessons/{lesson}/complete", student.token))
                    added = True
        if not added:
            return rows
        position += 1


def session_values(
    student: Student,
    catalogue: Catalogue,
    terms: tuple[str, ...],
    rng: random.Random,
    *,
    enroll_queue: int = 4,
) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    """Pools and queues filling a student's-day session's paths (see ``student_day_mix``).

    Pools: ``course`` (any published course), ``term``, ``browse``, ``enrolled`` (the
    student's courses). Queues: ``todo`` (``<course>/lessons/<lesson>`` of the enrolled
    courses, first lessons first) and ``enroll`` (courses the student is not in yet).
    """
    enrolled = set(student.enrolled)
    enroll: list[str] = []
    while len(enroll) < min(enroll_queue, len(catalogue.published) - len(enrolled)):
        course = rng.choice(catalogue.published)
        if course not in enrolled and course not in enroll:
            enroll.append(course)
    todo = [path.removeprefix("/api/courses/").removesuffix("/complete") for path, _ in
            completion_rows([student], catalogue.lessons)]  # fmt: skip
    pools = {
        "course": catalogue.published,
        "term": terms,
        "browse": BROWSE_QUERIES,
        "enrolled": student.enrolled,
    }
    return pools, {"todo": todo, "enroll": enroll}


def write_rows(path: Path, rows: Sequence[Row]) -> Path:
    """Rows as ``lua/rows.lua`` reads them."""
    path.write_text("".join(f"{p}\t{token}\n" for p, token in rows))
    return path
