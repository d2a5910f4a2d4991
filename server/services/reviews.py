"""Reviews: one per student and course, by enrolled students; the course's rating follows."""

from __future__ import annotations

import msgspec

from schemas.courses import Enrollment, Review, ReviewCreate, ReviewPage, ReviewUpdate
from server.db.queries import enrollments as eq
from server.db.queries import reviews as q
from server.db.rows import narrowed
from server.db.unit import UnitOfWork
from server.errors import Conflict, Forbidden, NotFound
from server.services.courses import Courses
from server.services.plain_text import plain_text
from server.services.viewer import Viewer


class _Listed(Review, kw_only=True):
    total: int


def _comment(value: str | None) -> str | None:
    if value is None:
        return None
    return plain_text(value) or None


class Reviews:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def list_for(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, *, page: int, limit: int
    ) -> ReviewPage:
        await self._courses.access(uow, viewer, course_id)
        params = {"course": course_id, "limit": limit, "offset": (page - 1) * limit}
        rows = await uow.all(q.LIST, params, _Listed)
        total = rows[0].total if rows else int(await uow.value(q.COUNT, params) or 0)
        items = [narrowed(r, Review) for r in rows]
        return ReviewPage(items=items, page=page, limit=limit, total=total)

    async def _lock_as_enrolled(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> None:
        # The course row's lock serialises the rating's recomputation across reviewers.
        await self._courses.lock_visible(uow, viewer, course_id)
        enrollment = await uow.one(
            eq.GET_OWN, {"user": viewer.user_id, "course": course_id}, Enrollment
        )
        if enrollment is None:
            raise Forbidden("Only students enrolled in the course may review it")

    async def create(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: ReviewCreate
    ) -> Review:
        await self._lock_as_enrolled(uow, viewer, course_id)
        review_id = await uow.value(
            q.CREATE,
            {
                "course": course_id,
                "user": viewer.user_id,
                "rating": body.rating,
                "comment": _comment(body.comment),
            },
        )
        if review_id is None:
            raise Conflict("You have already reviewed this course; edit it with PUT .../mine")
        await uow.execute(q.REFRESH_RATING, {"course": course_id})
        self._courses.changed(uow, course_id)
        return await self._get(uow, str(review_id))

    async def update_mine(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: ReviewUpdate
    ) -> Review:
        await self._lock_as_enrolled(uow, viewer, course_id)
        review_id = await uow.value(
            q.UPDATE_MINE,
            {
                "course": course_id,
                "user": viewer.user_id,
                "rating": None if body.rating is msgspec.UNSET else body.rating,
                "set_comment": body.comment is not msgspec.UNSET,
                "comment": None if body.comment is msgspec.UNSET else _comment(body.comment),
            },
        )
        if review_id is None:
            raise NotFound("You have not reviewed this course")
        await uow.execute(q.REFRESH_RATING, {"course": course_id})
        self._courses.changed(uow, course_id)
        return await self._get(uow, str(review_id))

    async def _get(self, uow: UnitOfWork, review_id: str) -> Review:
        review = await uow.one(q.GET, {"id": review_id}, Review)
        assert review is not None
        return review
