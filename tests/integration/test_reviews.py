"""Reviews: enrolled students only, one each, editable; the course's rating follows them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.accounts import Account, register
from tests.support.courses import published_course


async def test_one_review_per_enrolled_student_and_the_rating_follows(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    base = f"/api/courses/{course['id']}"
    outsider = await register(http)
    refused = await http.post(f"{base}/reviews", headers=outsider.auth, json={"rating": 5})
    assert refused.status_code == 403
    student = await register(http)
    await http.post(f"{base}/enroll", headers=student.auth)
    made = await http.post(
        f"{base}/reviews", headers=student.auth, json={"rating": 4, "comment": "<b>Good</b> pace"}
    )
    assert made.status_code == 201
    assert made.json()["comment"] == "Good pace"
    twice = await http.post(f"{base}/reviews", headers=student.auth, json={"rating": 1})
    assert twice.status_code == 409
    edited = await http.put(f"{base}/reviews/mine", headers=student.auth, json={"rating": 2})
    assert edited.status_code == 200
    assert edited.json()["rating"] == 2
    assert edited.json()["comment"] == "Good pace"
    seen = (await http.get(base, headers=outsider.auth)).json()
    assert seen["reviewCount"] == 1
    assert seen["averageRating"] == 2
    listed = (await http.get(f"{base}/reviews", headers=outsider.auth)).json()
    assert listed["total"] == 1
    assert listed["items"][0]["author"] == "Ada Lovelace"


async def test_ratings_are_out_of_range_400(http: httpx.AsyncClient, teacher: Account) -> None:
    course, _ = await published_course(http, teacher)
    student = await register(http)
    await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
    for rating in (0, 6, 2.5, None):
        response = await http.post(
            f"/api/courses/{course['id']}/reviews", headers=student.auth, json={"rating": rating}
        )
        assert response.status_code == 400, rating


async def test_concurrent_reviews_keep_the_rating_exact(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    base = f"/api/courses/{course['id']}"
    students = [await register(http) for _ in range(6)]
    for student in students:
        await http.post(f"{base}/enroll", headers=student.auth)
    ratings = [5, 4, 3, 5, 1, 2]
    answers = await asyncio.gather(
        *(
            http.post(f"{base}/reviews", headers=s.auth, json={"rating": r})
            for s, r in zip(students, ratings, strict=True)
        )
    )
    assert [a.status_code for a in answers] == [201] * 6
    seen = (await http.get(base, headers=students[0].auth)).json()
    assert seen["reviewCount"] == 6
    assert seen["averageRating"] == pytest.approx(round(sum(ratings) / 6, 2))
