"""Statements over `courses`: reading as a viewer may, searching, writing, publishing.

Visibility (the reference's `filterByPermissions`) is one predicate, bound to the viewer:
admins see every course; anyone sees published ones; a teacher sees the courses they
teach; a student sees the courses they are enrolled in, whatever their status.
"""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

_COURSE: LiteralString = (
    "c.id::text AS id, c.slug, c.title, c.description, c.category, c.level,"
    " c.price::float8 AS price, c.duration, c.tags, c.prerequisites, c.learning_objectives,"
    " json_build_object('id', u.id::text, 'name', u.first_name || ' ' || u.last_name)"
    "   AS instructor,"
    " c.status, c.published_at, c.average_rating::float8 AS average_rating, c.review_count,"
    " c.total_enrollments, c.lesson_count, c.created_at, c.updated_at"
)
_FROM: LiteralString = " FROM courses c JOIN users u ON u.id = c.instructor_id"
VISIBLE: LiteralString = (
    "(%(admin)s OR c.status = 'published' OR c.instructor_id = %(viewer)s"
    " OR EXISTS (SELECT 1 FROM enrollments ve"
    "   WHERE ve.course_id = c.id AND ve.user_id = %(viewer)s))"
)

GET_VISIBLE = Statement(
    "courses.get_visible",
    "SELECT " + _COURSE + _FROM + " WHERE c.id = %(id)s AND " + VISIBLE,
)

GET_PUBLISHED = Statement(
    "courses.get_published",
    "SELECT " + _COURSE + _FROM + " WHERE c.id = %(id)s AND c.status = 'published'",
    prepare=True,
)

LOCK_FOR_WRITE = Statement(
    "courses.lock_for_write",
    "SELECT c.id::text AS id, c.instructor_id::text AS instructor_id, c.status,"
    " c.lesson_count, " + VISIBLE + " AS visible"
    " FROM courses c WHERE c.id = %(id)s FOR UPDATE OF c",
)

ACCESS = Statement(
    "courses.access",
    "SELECT c.id::text AS id, c.instructor_id::text AS instructor_id, c.status,"
    " c.lesson_count, " + VISIBLE + " AS visible"
    " FROM courses c WHERE c.id = %(id)s",
)

# Whether a non-admin sees a course outside the published catalogue: one they teach that is
# not published, or one they are enrolled in that is not (an archived course).
SEES_BEYOND_CATALOGUE = Statement(
    "courses.sees_beyond_catalogue",
    "SELECT EXISTS (SELECT 1 FROM courses WHERE instructor_id = %(viewer)s"
    "   AND status <> 'published')"
    " OR EXISTS (SELECT 1 FROM enrollments e JOIN courses c ON c.id = e.course_id"
    "   WHERE e.user_id = %(viewer)s AND c.status <> 'published')",
    prepare=True,
)

CREATE = Statement(
    "courses.create",
    "INSERT INTO courses (slug, title, description, category, level, price, duration, tags,"
    " prerequisites, learning_objectives, instructor_id)"
    " VALUES (%(slug)s, %(title)s, %(description)s, %(category)s, %(level)s, %(price)s,"
    " %(duration)s, %(tags)s, %(prerequisites)s, %(objectives)s, %(instructor)s)"
    " ON CONFLICT (slug) DO NOTHING RETURNING id::text",
)

UPDATE = Statement(
    "courses.update",
    "UPDATE courses SET title = coalesce(%(title)s, title),"
    " description = coalesce(%(description)s, description),"
    " category = coalesce(%(category)s, category), level = coalesce(%(level)s, level),"
    " price = coalesce(%(price)s, price), duration = coalesce(%(duration)s, duration),"
    " tags = coalesce(%(tags)s, tags), prerequisites = coalesce(%(prerequisites)s, prerequisites),"
    " learning_objectives = coalesce(%(objectives)s, learning_objectives), updated_at = now()"
    " WHERE id = %(id)s",
)

PUBLISH = Statement(
    "courses.publish",
    "UPDATE courses SET status = 'published', published_at = coalesce(published_at, now()),"
    " updated_at = now() WHERE id = %(id)s AND lesson_count > 0",
)

DELETE_OR_ARCHIVE = Statement(
    "courses.delete_or_archive",
    "WITH taken AS (SELECT EXISTS (SELECT 1 FROM enrollments WHERE course_id = %(id)s) AS yes),"
    " deleted AS (DELETE FROM courses WHERE id = %(id)s AND NOT (SELECT yes FROM taken)"
    "   RETURNING id),"
    " archived AS (UPDATE courses SET status = 'archived', updated_at = now()"
    "   WHERE id = %(id)s AND (SELECT yes FROM taken) RETURNING id)"
    " SELECT CASE WHEN EXISTS (SELECT 1 FROM deleted) THEN 'deleted'"
    "   WHEN EXISTS (SELECT 1 FROM archived) THEN 'archived' END",
)

_FILTERS: LiteralString = (
    " WHERE " + VISIBLE + " AND (%(q)s::text IS NULL"
    "   OR c.search @@ websearch_to_tsquery('english', %(q)s::text)"
    "   OR lower(%(q)s::text) <%% c.search_words)"
    " AND (%(category)s::text IS NULL OR c.category = %(category)s)"
    " AND (%(level)s::text IS NULL OR c.level = %(level)s)"
    " AND (%(tags)s::text[] IS NULL OR c.tags && %(tags)s::text[])"
    " AND (%(price_min)s::numeric IS NULL OR c.price >= %(price_min)s::numeric)"
    " AND (%(price_max)s::numeric IS NULL OR c.price <= %(price_max)s::numeric)"
    " AND (%(instructor)s::uuid IS NULL OR c.instructor_id = %(instructor)s::uuid)"
    " AND (%(status)s::text IS NULL OR c.status = %(status)s)"
)
# The search term is written into each condition (not joined in from a CTE) so that the
# planner, which sees its value, can take the GIN indexes.
_SEARCH_HEAD: LiteralString = "SELECT " + _COURSE + ", count(*) OVER () AS total" + _FROM + _FILTERS
_PAGE: LiteralString = " LIMIT %(limit)s OFFSET %(offset)s"


def _search(sort: LiteralString, order: LiteralString) -> Statement:
    # Planned per execution (prepare=False): the filters left unset fold away, so the
    # planner sees only the ones given and picks their indexes.
    return Statement(
        "courses.search_" + sort,
        _SEARCH_HEAD + " ORDER BY " + order + ", c.id" + _PAGE,
        prepare=False,
    )


SEARCH: dict[str, Statement] = {
    "relevance": _search(
        "relevance",
        "ts_rank_cd(c.search, websearch_to_tsquery('english', %(q)s::text)) * 2"
        " + word_similarity(lower(%(q)s::text), c.search_words)"
        " DESC, c.average_rating DESC, c.total_enrollments DESC",
    ),
    "rating": _search("rating", "c.average_rating DESC, c.total_enrollments DESC"),
    "popular": _search("popular", "c.total_enrollments DESC"),
    "newest": _search("newest", "c.published_at DESC NULLS LAST, c.created_at DESC"),
    "price": _search("price", "c.price"),
}

COUNT_FILTERED = Statement(
    "courses.count_filtered",
    "SELECT count(*) FROM courses c" + _FILTERS,
    prepare=False,
)
