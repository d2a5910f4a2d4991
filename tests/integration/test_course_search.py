"""Course search and lists: full text with typos and prefixes, filters, sorts, pagination."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.accounts import Account, register
from tests.support.courses import make_teacher, published_course


@pytest.fixture
def marker() -> str:
    """A word only this test's courses carry, so searches see nothing of other tests."""
    return "zq" + uuid.uuid4().hex[:8]


@pytest.fixture
async def catalogue(
    http: httpx.AsyncClient, admin: Account, marker: str
) -> tuple[Account, dict[str, dict[str, Any]]]:
    teacher = await make_teacher(http, admin)
    made: dict[str, dict[str, Any]] = {}
    for key, title, tags, price, level in [
        ("python", "Python programming basics", ["python", marker], 10, "beginner"),
        ("kotlin", "Kotlin for Android developers", ["mobile", marker], 30, "intermediate"),
        ("stats", "Statistics with spreadsheets", ["statistics", marker], 0, "beginner"),
    ]:
        course, _ = await published_course(
            http, teacher, lessons=1, title=title, tags=tags, price=price, level=level,
            category=f"cat-{marker}",
        )  # fmt: skip
        made[key] = course
    return teacher, made


async def _search(http: httpx.AsyncClient, who: Account, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/courses", headers=who.auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_finds_by_word_prefix_and_misspelling(
    http: httpx.AsyncClient, catalogue: tuple[Account, dict[str, dict[str, Any]]], marker: str
) -> None:
    _, made = catalogue
    student = await register(http)
    for q in ("python", "progr", "pyhton programing", "Python basics"):
        found = await _search(http, student, q=q, category=f"cat-{marker}")
        assert found["items"], q
        assert found["items"][0]["id"] == made["python"]["id"], q
    nothing = await _search(http, student, q="xylophone", category=f"cat-{marker}")
    assert nothing["total"] == 0


async def test_filters_and_sorts_combine_with_pagination(
    http: httpx.AsyncClient, catalogue: tuple[Account, dict[str, dict[str, Any]]], marker: str
) -> None:
    teacher, made = catalogue
    student = await register(http)
    scope = {"category": f"cat-{marker}"}
    by_price = await _search(http, student, sort="price", **scope)
    assert [c["id"] for c in by_price["items"]] == [
        made["stats"]["id"], made["python"]["id"], made["kotlin"]["id"]
    ]  # fmt: skip
    cheap = await _search(http, student, priceMax=15, level="beginner", **scope)
    assert {c["id"] for c in cheap["items"]} == {made["stats"]["id"], made["python"]["id"]}
    tagged = await _search(http, student, tags=["mobile"], **scope)
    assert [c["id"] for c in tagged["items"]] == [made["kotlin"]["id"]]
    mine = await _search(http, student, instructorId=teacher.user_id, limit=2, page=2)
    assert mine["total"] == 3
    assert mine["page"] == 2
    assert mine["limit"] == 2
    assert len(mine["items"]) == 1
    capped = await _search(http, student, limit=1000, **scope)
    assert capped["limit"] == 100


async def test_bad_query_parameters_are_400(http: httpx.AsyncClient) -> None:
    student = await register(http)
    for params in ({"sort": "random"}, {"page": 0}, {"priceMin": -1}, {"level": "expert"}):
        response = await http.get("/api/courses", headers=student.auth, params=params)
        assert response.status_code == 400, params


async def test_students_list_published_and_enrolled_courses_only(
    http: httpx.AsyncClient, admin: Account, marker: str
) -> None:
    teacher = await make_teacher(http, admin)
    draft_category = f"draft-{marker}"
    response = await http.post(
        "/api/courses",
        headers=teacher.auth,
        json={
            "title": "Unreleased course",
            "description": "Not ready for anyone yet.",
            "category": draft_category,
            "level": "beginner",
            "duration": 10,
            "learningObjectives": ["Wait for it"],
        },
    )
    assert response.status_code == 201
    student = await register(http)
    assert (await _search(http, student, category=draft_category))["total"] == 0
    assert (await _search(http, teacher, category=draft_category))["total"] == 1
    assert (await _search(http, admin, category=draft_category, status="draft"))["total"] == 1
