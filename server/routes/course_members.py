"""`/api/courses/{id}`: enrolling, the course's students, lessons and their completion."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.base import MAX_PAGE_SIZE
from schemas.courses import (
    CourseStudentPage,
    Enrollment,
    EnrollmentStatus,
    EnrollRequest,
    Lesson,
    LessonCreate,
    LessonList,
    LessonUpdate,
)
from server.db.unit import UnitOfWork
from server.http.idempotency import Idempotency
from server.security.permissions import Permission, Role
from server.services.enrollments import Enrollments
from server.services.lessons import Lessons
from server.services.viewer import Viewer

_READ = {"permission": Permission.COURSE_READ}
_UPDATE = {"permission": Permission.COURSE_UPDATE}
_STUDENT = {"roles": (Role.STUDENT,)}


class EnrollmentsController(Controller):
    path = "/api/courses/{course_id:uuid}"
    tags = ["enrollments"]

    @post(
        "/enroll",
        opt=_STUDENT,
        status_code=201,
        responses={200: ResponseSpec(Enrollment, description="Already enrolled: the enrollment")},
    )
    async def enroll(
        self,
        enrollments: NamedDependency[Enrollments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[EnrollRequest | None] = None,
    ) -> Response[Enrollment]:
        """Enroll in a published course: 201 for a new enrollment, 200 with the existing one."""
        enrollment, created = await enrollments.enroll(
            uow, viewer, str(course_id), data or EnrollRequest()
        )
        return await idempotency.keep(Response(enrollment, status_code=201 if created else 200))

    @delete("/enroll", opt=_STUDENT, status_code=HTTP_204_NO_CONTENT)
    async def drop(
        self,
        enrollments: NamedDependency[Enrollments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> None:
        """Drop the course; progress is kept and enrolling again resumes it."""
        await enrollments.drop(uow, viewer, str(course_id))

    @get("/enrollments", opt=_UPDATE)
    async def students(
        self,
        enrollments: NamedDependency[Enrollments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        status: FromQuery[EnrollmentStatus | None] = None,
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
    ) -> CourseStudentPage:
        """The course's students with their progress (its instructor or an admin)."""
        return await enrollments.students(
            uow, viewer, str(course_id), status=status, page=page, limit=min(limit, MAX_PAGE_SIZE)
        )

    @post("/lessons/{lesson_id:uuid}/complete", opt=_STUDENT, status_code=200)
    async def complete_lesson(
        self,
        enrollments: NamedDependency[Enrollments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        lesson_id: FromPath[uuid.UUID],
    ) -> Enrollment:
        """Mark a lesson completed; the enrollment with its new progress."""
        return await enrollments.complete_lesson(uow, viewer, str(course_id), str(lesson_id))


class LessonsController(Controller):
    path = "/api/courses/{course_id:uuid}/lessons"
    tags = ["lessons"]

    @get("/", opt=_READ)
    async def list_lessons(
        self,
        lessons: NamedDependency[Lessons],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> LessonList:
        """Full lessons for the enrolled and the staff; the syllabus for anyone else."""
        return await lessons.list_for(uow, viewer, str(course_id))

    @post("/", opt=_UPDATE, status_code=201)
    async def create_lesson(
        self,
        lessons: NamedDependency[Lessons],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[LessonCreate],
    ) -> Response[Lesson]:
        """Add a lesson, at the end or at `position` (later lessons move down)."""
        return await idempotency.keep(await lessons.create(uow, viewer, str(course_id), data))

    @put("/{lesson_id:uuid}", opt=_UPDATE)
    async def update_lesson(
        self,
        lessons: NamedDependency[Lessons],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        lesson_id: FromPath[uuid.UUID],
        data: JSONBody[LessonUpdate],
    ) -> Lesson:
        """Change some fields of a lesson."""
        return await lessons.update(uow, viewer, str(course_id), str(lesson_id), data)

    @delete("/{lesson_id:uuid}", opt=_UPDATE, status_code=HTTP_204_NO_CONTENT)
    async def delete_lesson(
        self,
        lessons: NamedDependency[Lessons],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        lesson_id: FromPath[uuid.UUID],
    ) -> None:
        """Remove a lesson."""
        await lessons.delete(uow, viewer, str(course_id), str(lesson_id))
