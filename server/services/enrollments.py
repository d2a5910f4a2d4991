"""Enrollments: enrolling (at most one per student and course), dropping, completing lessons.

Progress moves in one transaction under the enrollment's row lock, so concurrent
completions never lose one; it never goes down, and 100 completes the enrollment once.
The achievements an event earns are awarded in its transaction, at most once per user.
"""

from __future__ import annotations

import msgspec

from schemas.courses import CourseStudent, CourseStudentPage, Enrollment, EnrollRequest
from server.db.queries import enrollments as q
from server.db.rows import narrowed
from server.db.unit import UnitOfWork
from server.errors import Conflict, Forbidden, NotFound
from server.services.courses import Courses
from server.services.viewer import Viewer


class _Enrolled(Enrollment, kw_only=True):
    created: bool


class _Locked(msgspec.Struct):
    id: str
    status: str
    lesson_exists: bool
    lesson_gated: bool


class _Student(CourseStudent, kw_only=True):
    total: int


class Enrollments:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def enroll(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: EnrollRequest
    ) -> tuple[Enrollment, bool]:
        """The enrollment, and whether it is new (a repeat returns the existing one)."""
        row = await uow.one(
            q.ENROLL,
            {
                "course": course_id,
                "user": viewer.user_id,
                "payment": body.payment_method,
                "coupon": body.coupon_code,
            },
            _Enrolled,
        )
        if row is None:
            await self._courses.access(uow, viewer, course_id)
            raise Conflict("Only published courses can be enrolled in")
        if row.created:
            self._courses.changed(uow, course_id)
        return narrowed(row, Enrollment), row.created

    async def drop(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> None:
        if await uow.execute(q.DROP, {"user": viewer.user_id, "course": course_id}):
            return
        current = await uow.one(
            q.GET_OWN, {"user": viewer.user_id, "course": course_id}, Enrollment
        )
        if current is None:
            raise NotFound("You are not enrolled in this course")
        if current.status == "completed":
            raise Conflict("A completed course cannot be dropped")
        # Already dropped: dropping again changes nothing.

    async def complete_lesson(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, lesson_id: str
    ) -> Enrollment:
        locked = await uow.one(
            q.LOCK_FOR_PROGRESS,
            {"user": viewer.user_id, "course": course_id, "lesson": lesson_id},
            _Locked,
        )
        if locked is None or locked.status == "dropped":
            await self._courses.access(uow, viewer, course_id)
            raise Forbidden("Enroll in the course to complete its lessons")
        if not locked.lesson_exists:
            raise NotFound("Lesson not found")
        if locked.lesson_gated:
            raise Conflict("This lesson is completed by passing its assessment")
        return await self._complete(uow, viewer.user_id, locked, course_id, lesson_id)

    async def complete_passed_lesson(
        self, uow: UnitOfWork, user_id: str, course_id: str, lesson_id: str
    ) -> None:
        """Complete the lesson whose assessment the student has just passed."""
        locked = await uow.one(
            q.LOCK_FOR_PROGRESS,
            {"user": user_id, "course": course_id, "lesson": lesson_id},
            _Locked,
        )
        if locked is not None and locked.status != "dropped" and locked.lesson_exists:
            await self._complete(uow, user_id, locked, course_id, lesson_id)

    async def _complete(
        self, uow: UnitOfWork, user_id: str, locked: _Locked, course_id: str, lesson_id: str
    ) -> Enrollment:
        enrollment = await uow.one(
            q.COMPLETE_LESSON,
            {"enrollment": locked.id, "lesson": lesson_id, "course": course_id},
            Enrollment,
        )
        assert enrollment is not None
        if enrollment.status == "completed" and locked.status != "completed":
            await uow.execute(q.AWARD_COMPLETIONS, {"user": user_id})
        return enrollment

    async def students(
        self,
        uow: UnitOfWork,
        viewer: Viewer,
        course_id: str,
        *,
        status: str | None,
        page: int,
        limit: int,
    ) -> CourseStudentPage:
        access = await self._courses.access(uow, viewer, course_id)
        if not viewer.is_admin and access.instructor_id != viewer.user_id:
            raise Forbidden("Only the course's instructor or an admin may see its students")
        params = {
            "course": course_id,
            "status": status,
            "limit": limit,
            "offset": (page - 1) * limit,
        }
        rows = await uow.all(q.COURSE_STUDENTS, params, _Student)
        total = (
            rows[0].total if rows else int(await uow.value(q.COUNT_COURSE_STUDENTS, params) or 0)
        )
        items = [narrowed(r, CourseStudent) for r in rows]
        return CourseStudentPage(items=items, page=page, limit=limit, total=total)
