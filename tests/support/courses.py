"""Helpers that make teachers, courses and lessons through the public API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.accounts import Account, login, register


async def make_teacher(http: httpx.AsyncClient, admin: Account) -> Account:
    """A new account promoted by an admin, signed in again (the promotion ends its sessions)."""
    account = await register(http)
    response = await http.put(
        f"/api/users/{account.user_id}", headers=admin.auth, json={"role": "teacher"}
    )
    assert response.status_code == 200, response.text
    return await login(http, account.email, account.password)


def course_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"Python for data analysis {uuid.uuid4().hex[:6]}",
        "description": "Learn pandas, numpy and plotting through real data sets.",
        "category": "programming",
        "level": "beginner",
        "price": 19.99,
        "duration": 600,
        "tags": ["python", "data"],
        "prerequisites": ["basic algebra"],
        "learningObjectives": ["Load and clean a data set"],
    }
    body.update(overrides)
    return body


async def create_course(
    http: httpx.AsyncClient, teacher: Account, **overrides: Any
) -> dict[str, Any]:
    response = await http.post("/api/courses", headers=teacher.auth, json=course_body(**overrides))
    assert response.status_code == 201, response.text
    course: dict[str, Any] = response.json()
    return course


async def add_lesson(
    http: httpx.AsyncClient, teacher: Account, course_id: str, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"Lesson {uuid.uuid4().hex[:6]}",
        "content": "Read this, then try the exercise.",
        "durationMinutes": 15,
        **overrides,
    }
    response = await http.post(f"/api/courses/{course_id}/lessons", headers=teacher.auth, json=body)
    assert response.status_code == 201, response.text
    lesson: dict[str, Any] = response.json()
    return lesson


async def published_course(
    http: httpx.AsyncClient, teacher: Account, *, lessons: int = 2, **overrides: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    course = await create_course(http, teacher, **overrides)
    made = [await add_lesson(http, teacher, course["id"]) for _ in range(lessons)]
    response = await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    assert response.status_code == 200, response.text
    published: dict[str, Any] = response.json()
    return published, made
