"""`/api/courses`: search and read courses, and their authoring by teachers and admins."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.base import MAX_PAGE_SIZE, NO_CONTROL, ZERO_FLOOR
from schemas.courses import (
    Course,
    CourseAnalytics,
    CourseCreate,
    CoursePage,
    CourseSort,
    CourseStatus,
    CourseUpdate,
    Level,
)
from server.db.unit import UnitOfWork
from server.http.etag import json_with_etag
from server.http.idempotency import Idempotency
from server.security.permissions import Permission
from server.services.course_analytics import CourseAnalyticsReader
from server.services.courses import CourseQuery, Courses
from server.services.viewer import Viewer

_READ = {"permission": Permission.COURSE_READ}
_CREATE = {"permission": Permission.COURSE_CREATE}
_UPDATE = {"permission": Permission.COURSE_UPDATE}
_DELETE = {"permission": Permission.COURSE_DELETE}
_PUBLISH = {"permission": Permission.COURSE_PUBLISH}
_ANALYTICS = {"permission": Permission.ANALYTICS_READ}
AnyRequest = Request[Any, Any, Any]


def _cached_json(model: type[Any], description: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(data_container=model, description=description),
        304: ResponseSpec(None, description="Not modified: the `If-None-Match` tag is current"),
    }


SearchTag = Annotated[str, msgspec.Meta(pattern=NO_CONTROL)]
# Litestar documents a query list's items without their constraints.
SEARCH_TAGS = {"items": Schema(type=OpenAPIType.STRING, pattern=NO_CONTROL)}


class CoursesController(Controller):
    path = "/api/courses"
    tags = ["courses"]

    @get("/", opt=_READ, responses=_cached_json(CoursePage, "A page of courses"))
    async def search(
        self,
        request: AnyRequest,
        courses: NamedDependency[Courses],
        viewer: NamedDependency[Viewer],
        q: Annotated[
            str | None, QueryParameter(min_length=1, max_length=200, pattern=NO_CONTROL)
        ] = None,
        category: Annotated[str | None, QueryParameter(max_length=100, pattern=NO_CONTROL)] = None,
        level: FromQuery[Level | None] = None,
        tags: Annotated[
            list[SearchTag] | None, QueryParameter(max_items=10, schema_extra=SEARCH_TAGS)
        ] = None,
        price_min: Annotated[
            float | None,
            QueryParameter(name="priceMin", ge=0, le=1_000_000, schema_extra=ZERO_FLOOR),
        ] = None,
        price_max: Annotated[
            float | None,
            QueryParameter(name="priceMax", ge=0, le=1_000_000, schema_extra=ZERO_FLOOR),
        ] = None,
        instructor_id: Annotated[uuid.UUID | None, QueryParameter(name="instructorId")] = None,
        status: FromQuery[CourseStatus | None] = None,
        sort: FromQuery[CourseSort | None] = None,
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
    ) -> Response[bytes]:
        """Search and list the courses the caller may see.

        `q` is matched over title, tags and description by full-text search and by
        trigram similarity, so prefixes and misspellings still match; results are ranked by
        relevance, then rating, then enrollments.
        """
        query = CourseQuery(
            q=q,
            category=category,
            level=level,
            tags=tuple(tags) if tags else None,
            price_min=price_min,
            price_max=price_max,
            instructor_id=str(instructor_id) if instructor_id else None,
            status=status,
            sort=sort,
            page=page,
            limit=min(limit, MAX_PAGE_SIZE),
        )
        body = await courses.search_body(viewer, query)
        return json_with_etag(body, request.headers.get("if-none-match"))

    @get("/{course_id:uuid}", opt=_READ, responses=_cached_json(Course, "The course"))
    async def get_course(
        self,
        request: AnyRequest,
        courses: NamedDependency[Courses],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        """One course, if the caller may see it; `ETag`, and 304 on `If-None-Match`."""
        body = await courses.read(viewer, str(course_id))
        return json_with_etag(body, request.headers.get("if-none-match"))

    @post("/", opt=_CREATE, status_code=201)
    async def create(
        self,
        courses: NamedDependency[Courses],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        data: JSONBody[CourseCreate],
    ) -> Response[Course]:
        """Create a draft course taught by the caller; `Idempotency-Key` makes it retry-safe."""
        return await idempotency.keep(await courses.create(uow, viewer, data))

    @put("/{course_id:uuid}", opt=_UPDATE)
    async def update(
        self,
        courses: NamedDependency[Courses],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[CourseUpdate],
    ) -> Course:
        """Change some fields of a course (its instructor or an admin)."""
        return await courses.update(uow, viewer, str(course_id), data)

    @delete("/{course_id:uuid}", opt=_DELETE, status_code=HTTP_204_NO_CONTENT)
    async def delete_course(
        self,
        courses: NamedDependency[Courses],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> None:
        """Erase a course, or archive it when students are enrolled."""
        await courses.delete(uow, viewer, str(course_id))

    @post("/{course_id:uuid}/publish", opt=_PUBLISH, status_code=200)
    async def publish(
        self,
        courses: NamedDependency[Courses],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> Course:
        """Publish a course with at least one lesson."""
        return await courses.publish(uow, viewer, str(course_id))

    @get("/{course_id:uuid}/analytics", opt=_ANALYTICS)
    async def analytics(
        self,
        course_analytics: NamedDependency[CourseAnalyticsReader],
        reads: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> CourseAnalytics:
        """A course's students, progress, completion, rating and daily enrollments."""
        return await course_analytics.read(reads, viewer, str(course_id))
