"""Tests of benchmarks.course_requests: the learning scenarios' request lists and session values."""

import itertools
import random
from collections import Counter

import pytest

from benchmarks.course_requests import (
    BROWSE_QUERIES,
    Catalogue,
    Student,
    completion_rows,
    enroll_rows,
    plan_enrollments,
    read_rows,
    search_rows,
    session_values,
)

COURSES = tuple(f"c{i}" for i in range(10))
LESSONS = {c: tuple(f"{c}-l{p}" for p in range(3)) for c in COURSES}
CATALOGUE = Catalogue(published=COURSES, lessons=LESSONS, titles=("Go", "Rust"))
STUDENTS = [Student(f"u{i}", f"t{i}", (COURSES[i], COURSES[i + 1])) for i in range(4)]


def test_plan_enrollments_gives_distinct_published_courses() -> None:
    plan = plan_enrollments(["a", "b"], COURSES, 3, random.Random(1))
    assert set(plan) == {"a", "b"}
    assert all(len(set(c)) == 3 and set(c) <= set(COURSES) for c in plan.values())
    with pytest.raises(ValueError, match="published courses"):
        plan_enrollments(["a"], COURSES[:2], 3, random.Random(1))


def test_read_and_search_rows() -> None:
    assert read_rows("c1", ["t1", "t2"]) == [("/api/courses/c1", "t1"), ("/api/courses/c1", "t2")]
    rows = search_rows(["rust", "mach ine"], ["t1", "t2", "t3"])
    assert rows == [
        ("/api/courses?q=rust", "t1"),
        ("/api/courses?q=mach%20ine", "t2"),
        ("/api/courses?q=rust", "t3"),
    ]


def test_enroll_rows_are_new_pairs_and_students_take_turns() -> None:
    rows = enroll_rows(STUDENTS, COURSES, 20, random.Random(3))
    assert len(rows) == 20
    assert len(set(rows)) == 20
    token_user = {s.token: s for s in STUDENTS}
    for path, token in rows:
        course = path.removeprefix("/api/courses/").removesuffix("/enroll")
        assert course in COURSES
        assert course not in token_user[token].enrolled
    assert [t for _, t in rows[:4]] == ["t0", "t1", "t2", "t3"]


def test_enroll_rows_stop_when_every_pair_is_taken() -> None:
    rows = enroll_rows(STUDENTS[:1], COURSES, 100, random.Random(3))
    assert len(rows) == len(COURSES) - 2


def test_completion_rows_cover_every_lesson_once_first_lessons_first() -> None:
    rows = completion_rows(STUDENTS, LESSONS)
    assert len(rows) == len(set(rows)) == 4 * 2 * 3
    firsts = {f"/api/courses/{c}/lessons/{c}-l0/complete" for s in STUDENTS for c in s.enrolled}
    assert {p for p, _ in rows[:8]} == firsts
    # Neighbouring rows are never the same enrollment's (no queueing on one row lock).
    pairs = [(p.split("/lessons/")[0], t) for p, t in rows]
    assert all(a != b for a, b in itertools.pairwise(pairs))


def test_session_values_fill_a_students_day() -> None:
    student = STUDENTS[0]
    pools, queues = session_values(student, CATALOGUE, ("rust",), random.Random(1))
    assert pools["course"] is COURSES  # shared, so a generator process pickles it once
    assert pools["enrolled"] == student.enrolled
    assert pools["browse"] == BROWSE_QUERIES
    assert pools["term"] == ("rust",)
    assert len(queues["enroll"]) == 4
    assert not set(queues["enroll"]) & set(student.enrolled)
    assert len(set(queues["enroll"])) == 4
    assert queues["todo"][:2] == ["c0/lessons/c0-l0", "c1/lessons/c1-l0"]
    assert Counter(t.split("/")[0] for t in queues["todo"]) == {"c0": 3, "c1": 3}
