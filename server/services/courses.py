"""Courses: search and read as the viewer may, create, edit, publish, delete or archive.

Who sees what is one rule (`server.db.queries.courses.VISIBLE`). A course the viewer cannot
see does not exist for them (404), so another teacher's draft is a 404; a course they can
see but not change is a 403.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
import uuid
from typing import Any

import msgspec

from schemas.courses import Course, CourseCreate, CoursePage, CourseSort, CourseStatus, CourseUpdate
from schemas.problem import FieldError
from server.db.queries import courses as q
from server.db.rows import narrowed
from server.db.statement import Statement
from server.db.unit import Database, UnitOfWork
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.security.permissions import Role
from server.services import audit
from server.services.plain_text import plain_text
from server.services.ports import Cache
from server.services.viewer import Viewer

_SLUG_MAX = 80
_SLUG_ATTEMPTS = 5
CATALOGUE_TAG = "courses:catalogue"
"""Every cached search of published courses carries it: any change a listing shows bumps it."""
_NOT_PUBLISHED = b""
_encoder = msgspec.json.Encoder()
# Sees exactly the published catalogue: no course of its own, no enrollment.
_CATALOGUE_VIEWER = Viewer(str(uuid.UUID(int=0)), Role.STUDENT)


def course_tag(course_id: str) -> str:
    return f"course:{course_id}"


def invalidate_course(uow: UnitOfWork, cache: Cache, course_id: str) -> None:
    """Once `uow` commits, drop the cached reads the course's change makes stale."""

    async def invalidate() -> None:
        await cache.invalidate((course_tag(course_id), CATALOGUE_TAG))

    uow.after_commit(invalidate)


class CourseAccess(msgspec.Struct):
    id: str
    instructor_id: str
    status: CourseStatus
    lesson_count: int
    visible: bool


class _Found(Course, kw_only=True):
    total: int


class CourseQuery(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None
    category: str | None = None
    level: str | None = None
    tags: tuple[str, ...] | None = None
    price_min: float | None = None
    price_max: float | None = None
    instructor_id: str | None = None
    status: CourseStatus | None = None
    sort: CourseSort | None = None
    page: int = 1
    limit: int = 20


def search_statement(viewer: Viewer, query: CourseQuery) -> tuple[Statement, dict[str, Any]]:
    """The search statement for the query's sort, and its parameters for this viewer."""
    text = plain_text(query.q) if query.q else None
    sort = query.sort or ("relevance" if text else "newest")
    if sort == "relevance" and not text:
        sort = "newest"
    params = {
        **viewer.visibility(),
        "q": text or None,
        "category": query.category,
        "level": query.level,
        "tags": list(query.tags) if query.tags else None,
        "price_min": query.price_min,
        "price_max": query.price_max,
        "instructor": query.instructor_id,
        "status": query.status,
        "limit": query.limit,
        "offset": (query.page - 1) * query.limit,
    }
    return q.SEARCH[sort], params


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return slug or "course"


def _too_short(field: str, value: str, minimum: int) -> FieldError | None:
    if len(value) < minimum:
        return FieldError(field=field, message=f"Must be at least {minimum} characters of text")
    return None


class _Cleaned:
    """A course body's free text without HTML, each field checked again once stripped."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def text(self, field: str, value: str | msgspec.UnsetType, minimum: int) -> str | None:
        if not isinstance(value, str):
            return None
        cleaned = plain_text(value)
        if (error := _too_short(field, cleaned, minimum)) is not None:
            self.errors.append(error)
        return cleaned

    def texts(
        self, field: str, values: list[str] | msgspec.UnsetType, minimum: int
    ) -> list[str] | None:
        if not isinstance(values, list):
            return None
        cleaned = [plain_text(v) for v in values]
        for index, value in enumerate(cleaned):
            if (error := _too_short(f"{field}[{index}]", value, minimum)) is not None:
                self.errors.append(error)
        return cleaned

    def price(self, value: float | msgspec.UnsetType) -> float | None:
        if not isinstance(value, int | float):
            return None
        if round(value, 2) != value:
            self.errors.append(FieldError(field="price", message="At most 2 decimal places"))
        return value

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed("The request is invalid", details=self.errors)


def _fields(body: CourseCreate | CourseUpdate) -> dict[str, object]:
    clean = _Cleaned()
    fields: dict[str, object] = {
        "title": clean.text("title", body.title, 3),
        "description": clean.text("description", body.description, 10),
        "category": clean.text("category", body.category, 1),
        "level": None if body.level is msgspec.UNSET else body.level,
        "price": clean.price(body.price),
        "duration": None if body.duration is msgspec.UNSET else body.duration,
        "tags": clean.texts("tags", body.tags, 2),
        "prerequisites": clean.texts("prerequisites", body.prerequisites, 1),
        "objectives": clean.texts("learningObjectives", body.learning_objectives, 5),
    }
    clean.check()
    return fields


class Courses:
    """Reads of published courses and of the published catalogue go through the cache; a
    viewer who may see more than the published catalogue (their own drafts, an archived
    course they are enrolled in, an admin) is answered from the database."""

    def __init__(self, database: Database, cache: Cache) -> None:
        self._database = database
        self._cache = cache

    async def read(self, viewer: Viewer, course_id: str) -> bytes:
        """The course's JSON body as the viewer may see it.

        Reads open units of their own, only when the cache cannot answer: a cached read
        takes no connection at all.
        """
        body = await self._cache.get_or_load(
            course_tag(course_id), (course_tag(course_id),), lambda: self._load(course_id)
        )
        if body != _NOT_PUBLISHED:
            return body
        async with self._database.unit() as uow:
            return _encoder.encode(await self.get(uow, viewer, course_id))

    async def _load(self, course_id: str) -> bytes:
        async with self._database.unit() as uow:
            course = await self.get_published(uow, course_id)
        return _NOT_PUBLISHED if course is None else _encoder.encode(course)

    async def search_body(self, viewer: Viewer, query: CourseQuery) -> bytes:
        """A search's JSON page; cached when the viewer sees the published catalogue only.

        Each step opens a unit of its own and closes it before the cache may load (which
        takes another): no request ever holds two pooled connections.
        """
        if not viewer.is_admin and query.status is None:
            async with self._database.read_unit(viewer.user_id, autocommit=True) as check:
                beyond = await check.value(q.SEES_BEYOND_CATALOGUE, {"viewer": viewer.user_id})
            if not beyond:
                return await self._cached_search(query)
        async with self._database.read_unit(viewer.user_id) as uow:
            return _encoder.encode(await self.search(uow, viewer, query))

    async def _cached_search(self, query: CourseQuery) -> bytes:
        key = (
            "courses:search:" + hashlib.blake2b(_encoder.encode(query), digest_size=16).hexdigest()
        )
        return await self._cache.get_or_load(
            key, (CATALOGUE_TAG,), lambda: self._load_search(query)
        )

    async def _load_search(self, query: CourseQuery) -> bytes:
        # From the primary: a load from a replica behind a change just invalidated would be
        # cached stale for all readers until the next invalidation or the TTL.
        async with self._database.unit() as uow:
            return _encoder.encode(await self.search(uow, _CATALOGUE_VIEWER, query))

    def changed(self, uow: UnitOfWork, course_id: str) -> None:
        """Once `uow` commits, drop the cached reads that the course's change makes stale."""
        invalidate_course(uow, self._cache, course_id)

    async def access(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> CourseAccess:
        """The course as far as the viewer may see it; 404 when they may not."""
        found = await uow.one(q.ACCESS, {"id": course_id, **viewer.visibility()}, CourseAccess)
        if found is None or not found.visible:
            raise NotFound("Course not found")
        return found

    async def lock_visible(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> CourseAccess:
        """Lock the course row, if the viewer may see the course."""
        found = await uow.one(
            q.LOCK_FOR_WRITE, {"id": course_id, **viewer.visibility()}, CourseAccess
        )
        if found is None or not found.visible:
            raise NotFound("Course not found")
        return found

    async def lock_for_edit(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> CourseAccess:
        """Lock the course row for a change by its instructor or an admin."""
        found = await self.lock_visible(uow, viewer, course_id)
        if not viewer.is_admin and found.instructor_id != viewer.user_id:
            raise Forbidden("Only the course's instructor or an admin may change it")
        return found

    async def get(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> Course:
        course = await uow.one(q.GET_VISIBLE, {"id": course_id, **viewer.visibility()}, Course)
        if course is None:
            raise NotFound("Course not found")
        return course

    async def get_published(self, uow: UnitOfWork, course_id: str) -> Course | None:
        """The course if it is published: what every signed-in viewer sees alike."""
        return await uow.one(q.GET_PUBLISHED, {"id": course_id}, Course)

    async def search(self, uow: UnitOfWork, viewer: Viewer, query: CourseQuery) -> CoursePage:
        statement, params = search_statement(viewer, query)
        rows = await uow.all(statement, params, _Found)
        if rows:
            total = rows[0].total
        elif query.page > 1:
            total = int(await uow.value(q.COUNT_FILTERED, params) or 0)
        else:
            total = 0
        items = [narrowed(r, Course) for r in rows]
        return CoursePage(items=items, page=query.page, limit=query.limit, total=total)

    async def create(self, uow: UnitOfWork, viewer: Viewer, body: CourseCreate) -> Course:
        fields = _fields(body)
        base = slugify(str(fields["title"]))
        for attempt in range(_SLUG_ATTEMPTS):
            slug = base if attempt == 0 else f"{base[: _SLUG_MAX - 7]}-{secrets.token_hex(3)}"
            course_id = await uow.value(
                q.CREATE, {**fields, "slug": slug, "instructor": viewer.user_id}
            )
            if course_id is not None:
                return await self.get(uow, viewer, str(course_id))
        raise Conflict("Could not choose a unique slug for this title; try another title")

    async def update(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: CourseUpdate
    ) -> Course:
        await self.lock_for_edit(uow, viewer, course_id)
        await uow.execute(q.UPDATE, {**_fields(body), "id": course_id})
        invalidate_course(uow, self._cache, course_id)
        return await self.get(uow, viewer, course_id)

    async def publish(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> Course:
        access = await self.lock_for_edit(uow, viewer, course_id)
        if access.status == "archived":
            raise Conflict("An archived course cannot be published")
        if not await uow.execute(q.PUBLISH, {"id": course_id}):
            raise Conflict("A course needs at least one lesson to be published")
        await audit.record(
            uow,
            action="course.publish",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="course",
            target_id=course_id,
            details={"from": access.status},
        )
        invalidate_course(uow, self._cache, course_id)
        return await self.get(uow, viewer, course_id)

    async def delete(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> str:
        """Erase the course, or archive it when it has enrollments; which one happened."""
        await self.lock_for_edit(uow, viewer, course_id)
        outcome = await uow.value(q.DELETE_OR_ARCHIVE, {"id": course_id})
        if outcome is None:
            raise NotFound("Course not found")
        await audit.record(
            uow,
            action="course.delete",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="course",
            target_id=course_id,
            details={"result": str(outcome)},
        )
        invalidate_course(uow, self._cache, course_id)
        return str(outcome)
