"""Statements over `lessons`: the syllabus, full lessons, and their writes."""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

_LESSON: LiteralString = (
    "id::text AS id, course_id::text AS course_id, title, duration_minutes, position, required"
)

LIST_FULL = Statement(
    "lessons.list_full",
    "SELECT " + _LESSON + ", content, created_at, updated_at FROM lessons"
    " WHERE course_id = %(course)s ORDER BY position",
)

LIST_SYLLABUS = Statement(
    "lessons.list_syllabus",
    "SELECT " + _LESSON + " FROM lessons WHERE course_id = %(course)s ORDER BY position",
)

GET = Statement(
    "lessons.get",
    "SELECT " + _LESSON + ", content, created_at, updated_at FROM lessons"
    " WHERE id = %(id)s AND course_id = %(course)s",
)

MAKE_ROOM = Statement(
    "lessons.make_room",
    "UPDATE lessons SET position = position + 1"
    " WHERE course_id = %(course)s AND position >= %(position)s",
)

CREATE = Statement(
    "lessons.create",
    "WITH l AS (INSERT INTO lessons (course_id, title, content, duration_minutes, position,"
    "   required)"
    "   VALUES (%(course)s, %(title)s, %(content)s, %(duration)s,"
    "   coalesce(%(position)s, (SELECT coalesce(max(position), 0) + 1 FROM lessons"
    "     WHERE course_id = %(course)s)), %(required)s)"
    "   RETURNING *),"
    " c AS (UPDATE courses SET lesson_count = lesson_count + 1, updated_at = now()"
    "   WHERE id = %(course)s)"
    " SELECT id::text AS id, course_id::text AS course_id, title, duration_minutes, position,"
    " required, content, created_at, updated_at FROM l",
)

UPDATE = Statement(
    "lessons.update",
    "UPDATE lessons SET title = coalesce(%(title)s, title),"
    " content = coalesce(%(content)s, content),"
    " duration_minutes = coalesce(%(duration)s, duration_minutes),"
    " position = coalesce(%(position)s, position), required = coalesce(%(required)s, required),"
    " updated_at = now() WHERE id = %(id)s AND course_id = %(course)s"
    " RETURNING " + _LESSON + ", content, created_at, updated_at",
)

DELETE = Statement(
    "lessons.delete",
    "WITH l AS (DELETE FROM lessons WHERE id = %(id)s AND course_id = %(course)s RETURNING id),"
    " c AS (UPDATE courses SET lesson_count = lesson_count - 1, updated_at = now()"
    "   WHERE id = %(course)s AND EXISTS (SELECT 1 FROM l))"
    " SELECT count(*) FROM l",
)
