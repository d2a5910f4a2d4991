"""The plans PostgreSQL picks for the course domain's read paths, on a seeded data set of
10,000 courses: every list, filter and search reaches its rows through an index."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from server.db.migrate import apply_migrations
from server.db.pool import create_pool
from server.db.queries import enrollments, lessons, reviews, users
from server.db.statement import Statement
from server.db.unit import Database
from server.security.passwords import password_hasher
from server.security.permissions import Role
from server.services.courses import CourseQuery, search_statement
from server.services.demo_data import DemoSizes, seed_demo
from server.services.viewer import Viewer
from server.settings import load_settings
from tests.support.services import throwaway_database

pytestmark = pytest.mark.timeout(300)

SIZES = DemoSizes(teachers=50, students=3000, courses=10_000, enrollments_per_student=4)
RARE_CATEGORY = "astronomy"
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@dataclass(frozen=True)
class Seeded:
    url: str
    student: Viewer
    """A student with enrollments, searching as students do (the visibility rule applies)."""
    teacher_id: str
    course_id: str
    """The published course with the most enrollments."""


async def _seed(url: str) -> None:
    await apply_migrations(url)
    settings = load_settings({"SEVENP_ENV": "test", "DATABASE_URL": url})
    async with create_pool(settings, url) as pool:
        await seed_demo(
            Database(pool),
            password_hasher(settings, max_concurrency=1),
            SIZES,
            lambda _step, _done: None,
        )


@pytest.fixture(scope="module")
def seeded(postgres_admin_url: str) -> Iterator[Seeded]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(_seed(url))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE courses SET category = %s"
                " WHERE id IN (SELECT id FROM courses ORDER BY id LIMIT 5)",
                (RARE_CATEGORY,),
            )
            conn.execute("ANALYZE")
            student, teacher, course = conn.execute(
                "SELECT (SELECT user_id::text FROM enrollments GROUP BY user_id"
                "   ORDER BY count(*) DESC, user_id LIMIT 1),"
                " (SELECT instructor_id::text FROM courses GROUP BY instructor_id"
                "   ORDER BY count(*) DESC, instructor_id LIMIT 1),"
                " (SELECT id::text FROM courses WHERE status = 'published'"
                "   ORDER BY total_enrollments DESC, id LIMIT 1)"
            ).fetchone()  # type: ignore[misc]
        yield Seeded(url, Viewer(student, Role.STUDENT), teacher, course)


def plan(url: str, statement: Statement, params: dict[str, Any]) -> dict[str, Any]:
    """The plan's root node, planned for these parameter values as the server plans them."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "EXPLAIN (FORMAT JSON) " + statement.sql, params, prepare=False
        ).fetchone()
    assert row is not None
    root: dict[str, Any] = row[0][0]["Plan"]
    return root


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def indexes_used(root: dict[str, Any]) -> set[str]:
    return {n["Index Name"] for n in nodes(root) if "Index Name" in n}


def scans_of(root: dict[str, Any], relation: str) -> list[str]:
    return [n["Node Type"] for n in nodes(root) if n.get("Relation Name") == relation]


def assert_reached_by_index(root: dict[str, Any], relation: str) -> None:
    scans = scans_of(root, relation)
    assert scans, f"{relation} is not in the plan"
    assert set(scans) <= INDEX_SCANS, f"{relation} scanned by {scans}"


SEARCH_TERMS = [
    pytest.param("python", id="word"),
    pytest.param("machine learnin", id="prefix"),
    pytest.param("pyhton", id="typo"),
    pytest.param("data analysis for beginners", id="phrase"),
    pytest.param("photografy", id="typo-in-another-subject"),
]


@pytest.mark.parametrize("terms", SEARCH_TERMS)
def test_the_text_search_uses_its_indexes(seeded: Seeded, terms: str) -> None:
    root = plan(seeded.url, *search_statement(seeded.student, CourseQuery(q=terms)))
    assert indexes_used(root) & {"courses_search_idx", "courses_search_words_idx"}
    assert "Seq Scan" not in scans_of(root, "courses")


def test_the_text_search_combined_with_filters_and_a_sort_keeps_its_indexes(
    seeded: Seeded,
) -> None:
    query = CourseQuery(q="python", level="beginner", price_max=100.0, sort="rating")
    root = plan(seeded.url, *search_statement(seeded.student, query))
    assert indexes_used(root) & {"courses_search_idx", "courses_search_words_idx"}
    assert "Seq Scan" not in scans_of(root, "courses")


def test_filters_use_their_indexes(seeded: Seeded) -> None:
    cases = {
        "courses_instructor_idx": CourseQuery(instructor_id=seeded.teacher_id),
        "courses_tags_idx": CourseQuery(tags=("rust",)),
        "courses_category_idx": CourseQuery(category=RARE_CATEGORY),
    }
    for index, query in cases.items():
        root = plan(seeded.url, *search_statement(seeded.student, query))
        assert index in indexes_used(root), (index, query)
        assert "Seq Scan" not in scans_of(root, "courses"), (index, query)


def test_a_courses_members_and_lessons_are_read_through_indexes(seeded: Seeded) -> None:
    of_course = {"course": seeded.course_id, "limit": 20, "offset": 0}
    cases = [
        (enrollments.COURSE_STUDENTS, {**of_course, "status": None}, "enrollments"),
        (enrollments.COURSE_STUDENTS, {**of_course, "status": "active"}, "enrollments"),
        (reviews.LIST, of_course, "reviews"),
        (lessons.LIST_FULL, {"course": seeded.course_id}, "lessons"),
    ]
    for statement, params, relation in cases:
        root = plan(seeded.url, statement, params)
        assert_reached_by_index(root, relation)
        if statement is not lessons.LIST_FULL:
            assert_reached_by_index(root, "users")


def test_a_students_own_enrollments_are_read_through_indexes(seeded: Seeded) -> None:
    student = seeded.student.user_id
    progress = plan(seeded.url, users.PROGRESS, {"id": student})
    assert_reached_by_index(progress, "enrollments")
    own = plan(seeded.url, enrollments.GET_OWN, {"user": student, "course": seeded.course_id})
    assert scans_of(own, "enrollments") == ["Index Scan"]
    assert "enrollments_user_id_course_id_key" in indexes_used(own)
