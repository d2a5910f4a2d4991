"""Students and a teacher act on one published course through the live server's HTTP API,
checked after every step against a model: enrollments, progress, drops and reviews."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support.accounts import GOOD_PASSWORD, unique_email
from tests.support.courses import course_body
from tests.support.live_server import LiveServer

STUDENTS = 3
MAX_LESSONS = 6
CENT = Decimal("0.01")

students = st.integers(0, STUDENTS - 1)
lesson_picks = st.integers(0, MAX_LESSONS - 1)
ratings = st.integers(1, 5)


@dataclass(frozen=True)
class Person:
    user_id: str
    auth: dict[str, str]


@dataclass(frozen=True)
class World:
    """What every example shares: one client, the teacher and the students (each example
    has a course of its own, so the students start it with no enrollment)."""

    client: httpx.Client
    teacher: Person
    students: tuple[Person, ...]


def _signed_in(response: httpx.Response) -> Person:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return Person(body["user"]["id"], {"Authorization": f"Bearer {body['token']}"})


def _register(client: httpx.Client) -> Person:
    return _signed_in(
        client.post(
            "/api/auth/register",
            json={
                "email": unique_email("student"),
                "password": GOOD_PASSWORD,
                "firstName": "Ada",
                "lastName": "Lovelace",
            },
        )
    )


def _login(client: httpx.Client, email: str) -> Person:
    return _signed_in(
        client.post("/api/auth/login", json={"email": email, "password": GOOD_PASSWORD})
    )


def _percent(part: int, whole: int) -> Decimal:
    """PostgreSQL's `round(numeric, 2)`: halves away from zero."""
    return (Decimal(part * 100) / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Student:
    status: str | None = None
    """None until the first enrollment; then active, dropped or completed."""
    enrollment_id: str | None = None
    done: set[str] = field(default_factory=set)
    progress: Decimal = Decimal(0)
    completed_at: str | None = None
    rating: int | None = None
    seen_progress: float = 0.0


@dataclass(frozen=True)
class LessonModel:
    id: str
    required: bool


class CourseLife(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self.course_id = ""
        self.lessons: list[LessonModel] = []
        self.students = [Student() for _ in range(STUDENTS)]
        self.enrollments_made = 0

    @property
    def client(self) -> httpx.Client:
        return self.world.client

    def _add_lesson(self, *, required: bool, first: bool = False) -> None:
        body: dict[str, Any] = {
            "title": f"Lesson {uuid.uuid4().hex[:6]}",
            "content": "Read this, then try the exercise.",
            "durationMinutes": 10,
            "required": required,
        }
        if first:
            body["position"] = 1
        response = self.client.post(
            f"/api/courses/{self.course_id}/lessons", headers=self.world.teacher.auth, json=body
        )
        assert response.status_code == 201, response.text
        assert response.json()["required"] is required
        self.lessons.append(LessonModel(response.json()["id"], required))

    def _as(self, who: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(
            method,
            f"/api/courses/{self.course_id}{path}",
            headers=self.world.students[who].auth,
            **kwargs,
        )

    def _expected_progress(self, student: Student) -> Decimal:
        required = [lesson.id for lesson in self.lessons if lesson.required]
        done = sum(1 for lesson_id in required if lesson_id in student.done)
        return _percent(done, len(required))

    def _agrees(self, who: int, enrollment: dict[str, Any]) -> None:
        """An enrollment the server answered with is the model's."""
        student = self.students[who]
        assert enrollment["id"] == student.enrollment_id
        assert enrollment["userId"] == self.world.students[who].user_id
        assert enrollment["status"] == student.status
        assert enrollment["progress"] == float(student.progress)
        # Fields at their default (0, null) are left out of the body.
        assert enrollment.get("completedLessons", 0) == len(student.done)
        assert enrollment.get("completedAt") == student.completed_at
        assert (enrollment.get("droppedAt") is not None) == (student.status == "dropped")

    @initialize(
        layout=st.lists(st.booleans(), min_size=1, max_size=4).filter(any),
    )
    def publish_course(self, layout: list[bool]) -> None:
        teacher = self.world.teacher
        made = self.client.post("/api/courses", headers=teacher.auth, json=course_body())
        assert made.status_code == 201, made.text
        self.course_id = made.json()["id"]
        for required in layout:
            self._add_lesson(required=required)
        published = self.client.post(f"/api/courses/{self.course_id}/publish", headers=teacher.auth)
        assert published.status_code == 200, published.text

    @precondition(lambda self: len(self.lessons) < MAX_LESSONS)
    @rule(required=st.booleans(), first=st.booleans())
    def teacher_adds_a_lesson(self, required: bool, first: bool) -> None:
        # Stored progress is recomputed at the next completion, and never goes down.
        self._add_lesson(required=required, first=first)

    @rule(who=students)
    def enroll(self, who: int) -> None:
        student = self.students[who]
        response = self._as(who, "POST", "/enroll")
        if student.status is None:
            assert response.status_code == 201, response.text
            student.enrollment_id = response.json()["id"]
            student.status = "active"
            self.enrollments_made += 1
        else:
            assert response.status_code == 200, response.text
            if student.status == "dropped":
                student.status = "active"
        self._agrees(who, response.json())

    @rule(who=students)
    def drop(self, who: int) -> None:
        student = self.students[who]
        response = self._as(who, "DELETE", "/enroll")
        expected = {None: 404, "active": 204, "dropped": 204, "completed": 409}[student.status]
        assert response.status_code == expected, response.text
        if student.status == "active":
            student.status = "dropped"

    @rule(who=students, pick=lesson_picks)
    def complete_lesson(self, who: int, pick: int) -> None:
        student = self.students[who]
        lesson = self.lessons[pick % len(self.lessons)]
        response = self._as(who, "POST", f"/lessons/{lesson.id}/complete")
        if student.status in (None, "dropped"):
            assert response.status_code == 403, response.text
            return
        assert response.status_code == 200, response.text
        student.done.add(lesson.id)
        student.progress = max(student.progress, self._expected_progress(student))
        if student.progress == 100 and student.status != "completed":
            student.status = "completed"
            student.completed_at = response.json().get("completedAt")
            assert student.completed_at is not None
        self._agrees(who, response.json())

    @rule(who=students)
    def study_the_rest(self, who: int) -> None:
        """Complete, in order, every lesson not completed yet: reaches 100 in one step."""
        for index, lesson in enumerate(self.lessons):
            if lesson.id not in self.students[who].done:
                self.complete_lesson(who, index)

    @rule(who=students, rating=ratings)
    def review(self, who: int, rating: int) -> None:
        student = self.students[who]
        response = self._as(who, "POST", "/reviews", json={"rating": rating})
        if student.status is None:
            assert response.status_code == 403, response.text
        elif student.rating is not None:
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 201, response.text
            assert response.json()["rating"] == rating
            student.rating = rating

    @rule(who=students, rating=ratings)
    def edit_review(self, who: int, rating: int) -> None:
        student = self.students[who]
        response = self._as(who, "PUT", "/reviews/mine", json={"rating": rating})
        if student.status is None:
            assert response.status_code == 403, response.text
        elif student.rating is None:
            assert response.status_code == 404, response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["rating"] == rating
            student.rating = rating

    @invariant()
    def the_course_counts_agree(self) -> None:
        given = [s.rating for s in self.students if s.rating is not None]
        average = (
            (Decimal(sum(given)) / len(given)).quantize(CENT, rounding=ROUND_HALF_UP)
            if given
            else Decimal(0)
        )
        # Read as a student: the cached published course must follow every write.
        response = self._as(0, "GET", "")
        assert response.status_code == 200, response.text
        course = response.json()
        assert course["totalEnrollments"] == self.enrollments_made
        assert course["reviewCount"] == len(given)
        assert course["averageRating"] == float(average)
        assert course["lessonCount"] == len(self.lessons)

    @invariant()
    def each_student_has_one_enrollment_as_modelled(self) -> None:
        response = self.client.get(
            f"/api/courses/{self.course_id}/enrollments",
            headers=self.world.teacher.auth,
            params={"limit": 100},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        listed = {item["userId"]: item for item in page["items"]}
        assert len(listed) == len(page["items"]) == page["total"]
        by_user = {p.user_id: self.students[i] for i, p in enumerate(self.world.students)}
        assert set(listed) == {uid for uid, s in by_user.items() if s.status is not None}
        for user_id, item in listed.items():
            student = by_user[user_id]
            assert item["status"] == student.status
            assert 0 <= item["progress"] <= 100
            assert item["progress"] >= student.seen_progress
            assert item["progress"] == float(student.progress)
            assert item.get("completedAt") == student.completed_at
            student.seen_progress = item["progress"]


def test_enrollments_progress_and_reviews_follow_the_model(
    live_server: LiveServer, teacher_email: str
) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=15) as client:
        world = World(
            client=client,
            teacher=_login(client, teacher_email),
            students=tuple(_register(client) for _ in range(STUDENTS)),
        )
        machine = type("CourseLifeOnTheLiveServer", (CourseLife,), {"world": world})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=60,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
