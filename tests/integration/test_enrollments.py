"""Enrolling, dropping, lessons as the enrolled see them, progress and its achievements."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.accounts import Account, register
from tests.support.courses import add_lesson, create_course, make_teacher, published_course


async def test_enrolling_twice_returns_the_same_enrollment(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    student = await register(http)
    path = f"/api/courses/{course['id']}/enroll"
    first = await http.post(path, headers=student.auth, json={"paymentMethod": "paypal"})
    assert first.status_code == 201
    assert first.json()["status"] == "active"
    assert first.json()["progress"] == 0
    again = await http.post(path, headers=student.auth)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    seen = (await http.get(f"/api/courses/{course['id']}", headers=student.auth)).json()
    assert seen["totalEnrollments"] == 1


async def test_only_students_enroll_and_only_in_published_courses(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    assert (
        await http.post(f"/api/courses/{course['id']}/enroll", headers=teacher.auth)
    ).status_code == 403
    draft = await create_course(http, teacher)
    student = await register(http)
    # A draft the student cannot see does not exist for them.
    hidden = await http.post(f"/api/courses/{draft['id']}/enroll", headers=student.auth)
    assert hidden.status_code == 404
    bad = await http.post(
        f"/api/courses/{course['id']}/enroll",
        headers=student.auth,
        json={"paymentMethod": "cash", "couponCode": "x!"},
    )
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json()["details"]} == {"paymentMethod", "couponCode"}


async def test_fifty_concurrent_enrollments_make_exactly_one(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    student = await register(http)
    path = f"/api/courses/{course['id']}/enroll"
    answers = await asyncio.gather(*(http.post(path, headers=student.auth) for _ in range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1
    assert statuses.count(200) == 49
    assert len({a.json()["id"] for a in answers}) == 1
    seen = (await http.get(f"/api/courses/{course['id']}", headers=student.auth)).json()
    assert seen["totalEnrollments"] == 1


async def test_students_see_the_syllabus_until_they_enroll(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher, lessons=2)
    student = await register(http)
    path = f"/api/courses/{course['id']}/lessons"
    syllabus = (await http.get(path, headers=student.auth)).json()
    assert syllabus["full"] is False
    assert all("content" not in lesson for lesson in syllabus["items"])
    assert [lesson["position"] for lesson in syllabus["items"]] == [1, 2]
    await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
    full = (await http.get(path, headers=student.auth)).json()
    assert full["full"] is True
    assert all(lesson["content"] for lesson in full["items"])
    staff = (await http.get(path, headers=teacher.auth)).json()
    assert staff["full"] is True


async def test_a_lesson_inserted_at_a_position_moves_the_later_ones(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course = await create_course(http, teacher)
    first = await add_lesson(http, teacher, course["id"], title="First")
    second = await add_lesson(http, teacher, course["id"], title="Second")
    inserted = await add_lesson(http, teacher, course["id"], title="Between", position=2)
    listed = (await http.get(f"/api/courses/{course['id']}/lessons", headers=teacher.auth)).json()
    order = [(lesson["title"], lesson["position"]) for lesson in listed["items"]]
    assert order == [("First", 1), ("Between", 2), ("Second", 3)]
    assert {first["id"], second["id"], inserted["id"]} == {i["id"] for i in listed["items"]}


async def test_progress_counts_required_lessons_and_completes_once(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course = await create_course(http, teacher)
    required = [await add_lesson(http, teacher, course["id"]) for _ in range(3)]
    optional = await add_lesson(http, teacher, course["id"], required=False)
    assert (
        await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    ).status_code == 200
    student = await register(http)
    base = f"/api/courses/{course['id']}"
    not_enrolled = await http.post(
        f"{base}/lessons/{required[0]['id']}/complete", headers=student.auth
    )
    assert not_enrolled.status_code == 403
    await http.post(f"{base}/enroll", headers=student.auth)
    optional_done = await http.post(
        f"{base}/lessons/{optional['id']}/complete", headers=student.auth
    )
    assert optional_done.json()["progress"] == 0
    progress = []
    for lesson in required:
        answer = await http.post(f"{base}/lessons/{lesson['id']}/complete", headers=student.auth)
        assert answer.status_code == 200, answer.text
        progress.append(answer.json()["progress"])
    assert progress == [33.33, 66.67, 100]
    done = answer.json()
    assert done["status"] == "completed"
    assert done["completedAt"] is not None
    assert done["completedLessons"] == 4
    repeat = await http.post(f"{base}/lessons/{required[0]['id']}/complete", headers=student.auth)
    assert repeat.json()["completedAt"] == done["completedAt"]
    assert repeat.json()["progress"] == 100
    assert (await http.delete(f"{base}/enroll", headers=student.auth)).status_code == 409
    achievements = (await http.get("/api/users/achievements", headers=student.auth)).json()
    titles = sorted(a["title"] for a in achievements["items"])
    assert titles == ["Finisher", "First steps"]
    stats = (await http.get("/api/users/statistics", headers=student.auth)).json()
    assert stats["coursesCompleted"] == 1
    assert stats["achievements"] == 2


async def test_concurrent_completions_lose_no_update(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course = await create_course(http, teacher)
    lessons = [await add_lesson(http, teacher, course["id"]) for _ in range(8)]
    await http.post(f"/api/courses/{course['id']}/publish", headers=teacher.auth)
    student = await register(http)
    base = f"/api/courses/{course['id']}"
    await http.post(f"{base}/enroll", headers=student.auth)
    answers = await asyncio.gather(
        *(
            http.post(f"{base}/lessons/{lesson['id']}/complete", headers=student.auth)
            for lesson in lessons
        )
    )
    assert all(a.status_code == 200 for a in answers)
    assert max(a.json()["progress"] for a in answers) == 100
    enrollment = (
        await http.post(f"{base}/lessons/{lessons[0]['id']}/complete", headers=student.auth)
    ).json()
    assert enrollment["status"] == "completed"
    assert enrollment["completedLessons"] == 8


async def test_dropping_keeps_progress_and_enrolling_again_resumes(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, lessons = await published_course(http, teacher, lessons=2)
    student = await register(http)
    base = f"/api/courses/{course['id']}"
    await http.post(f"{base}/enroll", headers=student.auth)
    await http.post(f"{base}/lessons/{lessons[0]['id']}/complete", headers=student.auth)
    assert (await http.delete(f"{base}/enroll", headers=student.auth)).status_code == 204
    refused = await http.post(f"{base}/lessons/{lessons[1]['id']}/complete", headers=student.auth)
    assert refused.status_code == 403
    back = await http.post(f"{base}/enroll", headers=student.auth)
    assert back.status_code == 200
    assert back.json()["status"] == "active"
    assert back.json()["progress"] == 50


async def test_the_instructor_sees_students_and_analytics(
    http: httpx.AsyncClient, admin: Account, teacher: Account
) -> None:
    course, lessons = await published_course(http, teacher, lessons=1)
    base = f"/api/courses/{course['id']}"
    students = [await register(http) for _ in range(3)]
    for student in students:
        await http.post(f"{base}/enroll", headers=student.auth)
    await http.post(f"{base}/lessons/{lessons[0]['id']}/complete", headers=students[0].auth)
    page = await http.get(f"{base}/enrollments", headers=teacher.auth, params={"limit": 2})
    assert page.status_code == 200
    assert page.json()["total"] == 3
    assert len(page.json()["items"]) == 2
    other = await make_teacher(http, admin)
    assert (await http.get(f"{base}/enrollments", headers=other.auth)).status_code == 403
    assert (await http.get(f"{base}/enrollments", headers=students[0].auth)).status_code == 403
    figures = (await http.get(f"{base}/analytics", headers=teacher.auth)).json()
    assert figures["totalStudents"] == 3
    assert figures["completionRate"] == pytest.approx(33.33)
    assert figures["averageProgress"] == pytest.approx(33.33)
    assert sum(day["count"] for day in figures["enrollmentsByDay"]) == 3
    assert len(figures["enrollmentsByDay"]) == 30


async def test_an_achievement_is_awarded_once_under_concurrent_events(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    courses = [(await published_course(http, teacher, lessons=1))[0] for _ in range(5)]
    student = await register(http)
    answers = await asyncio.gather(
        *(http.post(f"/api/courses/{c['id']}/enroll", headers=student.auth) for c in courses)
    )
    assert [a.status_code for a in answers] == [201] * 5
    achievements = (await http.get("/api/users/achievements", headers=student.auth)).json()
    assert [a["title"] for a in achievements["items"]] == ["First steps"]
