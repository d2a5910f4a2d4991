"""`/api/courses/{id}/reviews`: read a course's reviews; enrolled students write one each."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from schemas.base import MAX_PAGE_SIZE
from schemas.courses import Review, ReviewCreate, ReviewPage, ReviewUpdate
from server.db.unit import UnitOfWork
from server.http.idempotency import Idempotency
from server.security.permissions import Permission, Role
from server.services.reviews import Reviews
from server.services.viewer import Viewer

_READ = {"permission": Permission.COURSE_READ}
_STUDENT = {"roles": (Role.STUDENT,)}


class ReviewsController(Controller):
    path = "/api/courses/{course_id:uuid}/reviews"
    tags = ["reviews"]

    @get("/", opt=_READ)
    async def list_reviews(
        self,
        reviews: NamedDependency[Reviews],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
    ) -> ReviewPage:
        """The course's reviews, newest first."""
        return await reviews.list_for(
            uow, viewer, str(course_id), page=page, limit=min(limit, MAX_PAGE_SIZE)
        )

    @post("/", opt=_STUDENT, status_code=201)
    async def create_review(
        self,
        reviews: NamedDependency[Reviews],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewCreate],
    ) -> Response[Review]:
        """Review a course one is enrolled in; one review per student and course."""
        return await idempotency.keep(await reviews.create(uow, viewer, str(course_id), data))

    @put("/mine", opt=_STUDENT)
    async def update_my_review(
        self,
        reviews: NamedDependency[Reviews],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewUpdate],
    ) -> Review:
        """Change one's own review of the course."""
        return await reviews.update_mine(uow, viewer, str(course_id), data)
