"""`/api/courses`: authoring, visibility and ownership, validation, publishing, deletion."""

from __future__ import annotations

import uuid

import httpx

from tests.support.accounts import Account, register
from tests.support.courses import (
    add_lesson,
    course_body,
    create_course,
    make_teacher,
    published_course,
)


async def test_a_teacher_creates_a_draft_that_only_staff_who_may_see_it_see(
    http: httpx.AsyncClient, admin: Account, teacher: Account
) -> None:
    course = await create_course(http, teacher, title="Intro to Statistics!")
    assert course["status"] == "draft"
    assert course["slug"].startswith("intro-to-statistics")
    assert course["instructor"]["id"] == teacher.user_id
    assert course["publishedAt"] is None
    assert course["lessonCount"] == 0
    path = f"/api/courses/{course['id']}"
    student = await register(http)
    other_teacher = await make_teacher(http, admin)
    assert (await http.get(path, headers=teacher.auth)).status_code == 200
    assert (await http.get(path, headers=admin.auth)).status_code == 200
    assert (await http.get(path, headers=student.auth)).status_code == 404
    # Another teacher's draft does not exist for them: 404, not 403, for reads and writes.
    assert (await http.get(path, headers=other_teacher.auth)).status_code == 404
    put = await http.put(path, headers=other_teacher.auth, json={"title": "Taken over"})
    assert put.status_code == 404


async def test_slugs_stay_unique_for_equal_titles(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    title = f"Same title {uuid.uuid4().hex[:6]}"
    first = await create_course(http, teacher, title=title)
    second = await create_course(http, teacher, title=title)
    assert first["slug"] != second["slug"]
    assert second["slug"].startswith(first["slug"])


async def test_every_invalid_field_is_reported_at_once_and_nothing_is_stored(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    body = course_body(
        title="ab",
        description="short",
        level="expert",
        duration=0,
        tags=["x"] * 11,
        learningObjectives=[],
        price=-1,
    )
    response = await http.post("/api/courses", headers=teacher.auth, json=body)
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert {
        "title",
        "description",
        "level",
        "duration",
        "tags",
        "learningObjectives",
        "price",
    } <= fields
    mine = await http.get(
        "/api/courses", headers=teacher.auth, params={"instructorId": teacher.user_id}
    )
    assert mine.json()["total"] == 0


async def test_price_precision_and_html_are_checked_once_stripped(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    response = await http.post(
        "/api/courses",
        headers=teacher.auth,
        json=course_body(price=10.123, title="<b></b>ab", tags=["<i>x</i>"]),
    )
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"price", "title", "tags[0]"}
    course = await create_course(
        http,
        teacher,
        title="<script>alert(1)</script>Safe <b>title</b>",
        description="<p>Plain &amp; simple text</p> here",
    )
    assert course["title"] == "Safe title"
    assert course["description"] == "Plain & simple text here"


async def test_unknown_fields_are_refused(http: httpx.AsyncClient, teacher: Account) -> None:
    response = await http.post(
        "/api/courses", headers=teacher.auth, json=course_body(status="published")
    )
    assert response.status_code == 400
    assert {"field": "status", "message": "Unknown field"} in response.json()["details"]


async def test_students_cannot_author(http: httpx.AsyncClient) -> None:
    student = await register(http)
    response = await http.post("/api/courses", headers=student.auth, json=course_body())
    assert response.status_code == 403


async def test_publishing_needs_a_lesson_and_makes_the_course_visible(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course = await create_course(http, teacher)
    path = f"/api/courses/{course['id']}"
    refused = await http.post(f"{path}/publish", headers=teacher.auth)
    assert refused.status_code == 409
    await add_lesson(http, teacher, course["id"])
    published = await http.post(f"{path}/publish", headers=teacher.auth)
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    assert published.json()["publishedAt"] is not None
    student = await register(http)
    seen = await http.get(path, headers=student.auth)
    assert seen.status_code == 200
    assert seen.json()["lessonCount"] == 1


async def test_only_the_instructor_or_an_admin_changes_a_visible_course(
    http: httpx.AsyncClient, admin: Account, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    path = f"/api/courses/{course['id']}"
    other = await make_teacher(http, admin)
    assert (await http.put(path, headers=other.auth, json={"price": 5})).status_code == 403
    own = await http.put(path, headers=teacher.auth, json={"price": 5, "tags": ["stats"]})
    assert own.status_code == 200
    assert own.json()["price"] == 5
    assert own.json()["tags"] == ["stats"]
    assert own.json()["title"] == course["title"]
    by_admin = await http.put(path, headers=admin.auth, json={"level": "advanced"})
    assert by_admin.status_code == 200
    assert by_admin.json()["level"] == "advanced"


async def test_delete_erases_an_untaken_course_and_archives_a_taken_one(
    http: httpx.AsyncClient, admin: Account, teacher: Account
) -> None:
    untaken = await create_course(http, teacher)
    assert (
        await http.delete(f"/api/courses/{untaken['id']}", headers=teacher.auth)
    ).status_code == 403
    gone = await http.delete(f"/api/courses/{untaken['id']}", headers=admin.auth)
    assert gone.status_code == 204
    assert (await http.get(f"/api/courses/{untaken['id']}", headers=admin.auth)).status_code == 404
    taken, _ = await published_course(http, teacher)
    student = await register(http)
    enrolled = await http.post(f"/api/courses/{taken['id']}/enroll", headers=student.auth)
    assert enrolled.status_code == 201
    archived = await http.delete(f"/api/courses/{taken['id']}", headers=admin.auth)
    assert archived.status_code == 204
    kept = await http.get(f"/api/courses/{taken['id']}", headers=student.auth)
    assert kept.status_code == 200
    assert kept.json()["status"] == "archived"
    stranger = await register(http)
    assert (await http.get(f"/api/courses/{taken['id']}", headers=stranger.auth)).status_code == 404


async def test_a_malformed_or_unknown_course_id_is_not_a_server_error(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    unknown = await http.get(f"/api/courses/{uuid.uuid4()}", headers=teacher.auth)
    assert unknown.status_code == 404
    malformed = await http.get("/api/courses/not-a-uuid", headers=teacher.auth)
    assert malformed.status_code in (400, 404)
