"""A course's figures for its instructor and admins, in one statement."""

from __future__ import annotations

from schemas.courses import CourseAnalytics
from server.db.queries import enrollments as q
from server.db.unit import UnitOfWork
from server.errors import Forbidden
from server.services.courses import Courses
from server.services.viewer import Viewer

TREND_DAYS = 30


class CourseAnalyticsReader:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def read(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> CourseAnalytics:
        access = await self._courses.access(uow, viewer, course_id)
        if not viewer.is_admin and access.instructor_id != viewer.user_id:
            raise Forbidden("Only the course's instructor or an admin may see its analytics")
        figures = await uow.one(
            q.COURSE_ANALYTICS, {"course": course_id, "days": TREND_DAYS}, CourseAnalytics
        )
        assert figures is not None
        return figures
