"""A course's gradebook for its instructor and admins: one statement per page."""

from __future__ import annotations

from schemas.assessments import Gradebook, GradebookColumn, GradebookRow
from server.db.queries import submissions as q
from server.db.unit import UnitOfWork
from server.errors import Forbidden
from server.services.courses import Courses
from server.services.viewer import Viewer


class Gradebooks:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def authorize(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> None:
        """Only the course's instructor or an admin reads its gradebook."""
        access = await self._courses.access(uow, viewer, course_id)
        if not viewer.is_admin and access.instructor_id != viewer.user_id:
            raise Forbidden("Only the course's instructor or an admin may see its gradebook")

    async def page(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, *, page: int, limit: int
    ) -> Gradebook:
        await self.authorize(uow, viewer, course_id)
        params = {"course": course_id, "limit": limit, "offset": (page - 1) * limit}
        rows = await uow.all(q.GRADEBOOK, params, GradebookRow)
        columns = await uow.all(q.GRADEBOOK_COLUMNS, params, GradebookColumn)
        total = int(await uow.value(q.COURSE_STUDENT_COUNT, params) or 0)
        return Gradebook(assessments=columns, items=rows, page=page, limit=limit, total=total)
