"""Lessons of a course: the syllabus for anyone who sees the course, full lessons for the
enrolled and the staff, and writes by the course's instructor or an admin."""

from __future__ import annotations

import msgspec

from schemas.courses import Enrollment, Lesson, LessonCreate, LessonList, LessonUpdate
from schemas.problem import FieldError
from server.db.queries import enrollments as eq
from server.db.queries import lessons as q
from server.db.unit import UnitOfWork
from server.errors import NotFound, ValidationFailed
from server.services.courses import Courses
from server.services.plain_text import plain_text
from server.services.viewer import Viewer


def _title(value: str | msgspec.UnsetType) -> str | None:
    if not isinstance(value, str):
        return None
    title = plain_text(value)
    if len(title) < 3:
        raise ValidationFailed(
            "The request is invalid",
            details=[FieldError(field="title", message="Must be at least 3 characters of text")],
        )
    return title


def _content(value: str | msgspec.UnsetType) -> str | None:
    return plain_text(value) if isinstance(value, str) else None


def _unset(value: object) -> object:
    return None if value is msgspec.UNSET else value


class Lessons:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def list_for(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> LessonList:
        access = await self._courses.access(uow, viewer, course_id)
        full = viewer.is_admin or access.instructor_id == viewer.user_id
        if not full:
            enrollment = await uow.one(
                eq.GET_OWN, {"user": viewer.user_id, "course": course_id}, Enrollment
            )
            full = enrollment is not None and enrollment.status != "dropped"
        statement = q.LIST_FULL if full else q.LIST_SYLLABUS
        items = await uow.all(statement, {"course": course_id}, Lesson)
        return LessonList(items=items, full=full)

    async def create(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: LessonCreate
    ) -> Lesson:
        await self._courses.lock_for_edit(uow, viewer, course_id)
        if body.position is not None:
            await uow.execute(q.MAKE_ROOM, {"course": course_id, "position": body.position})
        lesson = await uow.one(
            q.CREATE,
            {
                "course": course_id,
                "title": _title(body.title),
                "content": _content(body.content),
                "duration": body.duration_minutes,
                "position": body.position,
                "required": body.required,
            },
            Lesson,
        )
        assert lesson is not None
        self._courses.changed(uow, course_id)
        return lesson

    async def update(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, lesson_id: str, body: LessonUpdate
    ) -> Lesson:
        await self._courses.lock_for_edit(uow, viewer, course_id)
        current = await uow.one(q.GET, {"id": lesson_id, "course": course_id}, Lesson)
        if current is None:
            raise NotFound("Lesson not found")
        position = _unset(body.position)
        if position is not None and position != current.position:
            await uow.execute(q.MAKE_ROOM, {"course": course_id, "position": position})
        lesson = await uow.one(
            q.UPDATE,
            {
                "id": lesson_id,
                "course": course_id,
                "title": _title(body.title),
                "content": _content(body.content),
                "duration": _unset(body.duration_minutes),
                "position": position,
                "required": _unset(body.required),
            },
            Lesson,
        )
        assert lesson is not None
        self._courses.changed(uow, course_id)
        return lesson

    async def delete(self, uow: UnitOfWork, viewer: Viewer, course_id: str, lesson_id: str) -> None:
        await self._courses.lock_for_edit(uow, viewer, course_id)
        if not await uow.value(q.DELETE, {"id": lesson_id, "course": course_id}):
            raise NotFound("Lesson not found")
        self._courses.changed(uow, course_id)
