"""Statements over `reviews`, and the course's rating kept in step with them."""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

_REVIEW: LiteralString = (
    "r.id::text AS id, r.course_id::text AS course_id, r.user_id::text AS user_id,"
    " u.first_name || ' ' || u.last_name AS author, r.rating, r.comment, r.created_at,"
    " r.updated_at"
)

LIST = Statement(
    "reviews.list",
    "SELECT " + _REVIEW + ", count(*) OVER () AS total"
    " FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.course_id = %(course)s"
    " ORDER BY r.created_at DESC, r.id LIMIT %(limit)s OFFSET %(offset)s",
)

COUNT = Statement("reviews.count", "SELECT count(*) FROM reviews WHERE course_id = %(course)s")

CREATE = Statement(
    "reviews.create",
    "INSERT INTO reviews (course_id, user_id, rating, comment)"
    " VALUES (%(course)s, %(user)s, %(rating)s, %(comment)s)"
    " ON CONFLICT (course_id, user_id) DO NOTHING RETURNING id::text",
)

UPDATE_MINE = Statement(
    "reviews.update_mine",
    "UPDATE reviews SET rating = coalesce(%(rating)s, rating),"
    " comment = CASE WHEN %(set_comment)s THEN %(comment)s ELSE comment END,"
    " updated_at = now() WHERE course_id = %(course)s AND user_id = %(user)s"
    " RETURNING id::text",
)

GET = Statement(
    "reviews.get",
    "SELECT " + _REVIEW + " FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.id = %(id)s",
)

# Run after a review changed, under the course row's lock, so it counts every committed review.
REFRESH_RATING = Statement(
    "reviews.refresh_rating",
    "UPDATE courses c SET review_count = s.n, average_rating = s.average"
    " FROM (SELECT count(*) AS n, round(coalesce(avg(rating), 0), 2) AS average FROM reviews"
    "   WHERE course_id = %(course)s) s WHERE c.id = %(course)s",
)
