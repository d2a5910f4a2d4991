"""Statements over `enrollments` and `completed_lessons`: enrolling, dropping, progress."""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

_ENROLLMENT: LiteralString = (
    "id::text AS id, course_id::text AS course_id, user_id::text AS user_id, status,"
    " progress::float8 AS progress, enrolled_at, last_activity_at, completed_at, dropped_at"
)

# One statement: the enrollment is made (or a dropped one re-activated) only for a published
# course, the course's counter moves only for a new row, and the first-enrollment
# achievement is awarded once. `created` tells a new enrollment from an existing one.
ENROLL = Statement(
    "enrollments.enroll",
    "WITH c AS (SELECT id FROM courses WHERE id = %(course)s AND status = 'published'),"
    " e AS (INSERT INTO enrollments (user_id, course_id, payment_method, coupon_code)"
    "   SELECT %(user)s, id, %(payment)s, %(coupon)s FROM c"
    "   ON CONFLICT (user_id, course_id) DO UPDATE SET"
    "     status = CASE WHEN enrollments.status = 'dropped' THEN 'active'"
    "       ELSE enrollments.status END,"
    "     dropped_at = NULL, last_activity_at = now()"
    "   RETURNING *, (xmax = 0) AS created),"
    " counted AS (UPDATE courses SET total_enrollments = total_enrollments + 1"
    "   WHERE id IN (SELECT course_id FROM e WHERE created)),"
    " award AS (INSERT INTO achievements (user_id, rule, title, description, badge)"
    "   SELECT user_id, 'first_enrollment', 'First steps', 'Enrolled in a first course',"
    "   'first-enrollment' FROM e WHERE created"
    "   ON CONFLICT (user_id, rule) WHERE rule IS NOT NULL DO NOTHING)"
    " SELECT " + _ENROLLMENT + ", created,"
    " (SELECT count(*) FROM completed_lessons cl WHERE cl.enrollment_id = e.id)"
    "   AS completed_lessons FROM e",
)

GET_OWN = Statement(
    "enrollments.get_own",
    "SELECT " + _ENROLLMENT + " FROM enrollments WHERE user_id = %(user)s"
    " AND course_id = %(course)s",
)

DROP = Statement(
    "enrollments.drop",
    "UPDATE enrollments SET status = 'dropped', dropped_at = now(), last_activity_at = now()"
    " WHERE user_id = %(user)s AND course_id = %(course)s AND status = 'active'",
)

# Locks the enrollment row: completions of one student in one course are serialised, so
# none of them computes progress from a count that misses another.
LOCK_FOR_PROGRESS = Statement(
    "enrollments.lock_for_progress",
    "SELECT e.id::text AS id, e.status,"
    " EXISTS (SELECT 1 FROM lessons l WHERE l.id = %(lesson)s AND l.course_id = %(course)s)"
    "   AS lesson_exists,"
    " EXISTS (SELECT 1 FROM assessments a WHERE a.lesson_id = %(lesson)s AND a.published)"
    "   AS lesson_gated"
    " FROM enrollments e WHERE e.user_id = %(user)s AND e.course_id = %(course)s"
    " FOR UPDATE OF e",
)

# Progress = completed required lessons / required lessons x 100 (100 for a course with no
# required lesson), never lower than before; 100 makes the enrollment completed, once.
COMPLETE_LESSON = Statement(
    "enrollments.complete_lesson",
    "WITH done AS (INSERT INTO completed_lessons (enrollment_id, lesson_id)"
    "   VALUES (%(enrollment)s, %(lesson)s) ON CONFLICT DO NOTHING RETURNING lesson_id),"
    " counts AS (SELECT count(*) FILTER (WHERE l.required) AS required_total,"
    "   count(*) FILTER (WHERE l.required AND (cl.lesson_id IS NOT NULL"
    "     OR l.id IN (SELECT lesson_id FROM done))) AS required_done,"
    "   count(*) FILTER (WHERE cl.lesson_id IS NOT NULL"
    "     OR l.id IN (SELECT lesson_id FROM done)) AS all_done"
    "   FROM lessons l LEFT JOIN completed_lessons cl"
    "     ON cl.lesson_id = l.id AND cl.enrollment_id = %(enrollment)s"
    "   WHERE l.course_id = %(course)s),"
    " progress AS (SELECT CASE WHEN required_total = 0 THEN 100"
    "   ELSE round(required_done * 100.0 / required_total, 2) END AS value, all_done"
    "   FROM counts)"
    " UPDATE enrollments e SET"
    "   progress = greatest(e.progress, p.value),"
    "   status = CASE WHEN greatest(e.progress, p.value) >= 100 THEN 'completed'"
    "     ELSE e.status END,"
    "   completed_at = CASE WHEN greatest(e.progress, p.value) >= 100"
    "     THEN coalesce(e.completed_at, now()) ELSE e.completed_at END,"
    "   last_activity_at = now()"
    " FROM progress p WHERE e.id = %(enrollment)s"
    " RETURNING e.id::text AS id, e.course_id::text AS course_id, e.user_id::text AS user_id,"
    " e.status, e.progress::float8 AS progress, e.enrolled_at, e.last_activity_at,"
    " e.completed_at, e.dropped_at, p.all_done AS completed_lessons",
)

# Run in the transaction that completed a course.
AWARD_COMPLETIONS = Statement(
    "enrollments.award_completions",
    "WITH n AS (SELECT count(*) AS completed FROM enrollments"
    "   WHERE user_id = %(user)s AND status = 'completed')"
    " INSERT INTO achievements (user_id, rule, title, description, badge)"
    " SELECT %(user)s, r.rule, r.title, r.description, r.badge FROM n, (VALUES"
    "   ('first_course_completed', 'Finisher', 'Completed a first course', 'first-completion',"
    "     1),"
    "   ('five_courses_completed', 'Dedicated learner', 'Completed five courses',"
    "     'five-completions', 5)) AS r(rule, title, description, badge, needed)"
    " WHERE n.completed >= r.needed"
    " ON CONFLICT (user_id, rule) WHERE rule IS NOT NULL DO NOTHING",
)

COURSE_STUDENTS = Statement(
    "enrollments.course_students",
    "SELECT e.user_id::text AS user_id, u.first_name || ' ' || u.last_name AS name, u.email,"
    " e.status, e.progress::float8 AS progress, e.enrolled_at, e.last_activity_at,"
    " e.completed_at, count(*) OVER () AS total"
    " FROM enrollments e JOIN users u ON u.id = e.user_id"
    " WHERE e.course_id = %(course)s AND (%(status)s::text IS NULL OR e.status = %(status)s)"
    " ORDER BY e.enrolled_at DESC, e.id LIMIT %(limit)s OFFSET %(offset)s",
)

COUNT_COURSE_STUDENTS = Statement(
    "enrollments.count_course_students",
    "SELECT count(*) FROM enrollments"
    " WHERE course_id = %(course)s AND (%(status)s::text IS NULL OR status = %(status)s)",
)

COURSE_ANALYTICS = Statement(
    "enrollments.course_analytics",
    "WITH e AS (SELECT status, progress, enrolled_at, last_activity_at FROM enrollments"
    "   WHERE course_id = %(course)s),"
    " days AS (SELECT d::date AS date, (SELECT count(*) FROM e"
    "     WHERE e.enrolled_at >= d AND e.enrolled_at < d + interval '1 day') AS count"
    "   FROM generate_series(date_trunc('day', now()) - (%(days)s - 1) * interval '1 day',"
    "     date_trunc('day', now()), interval '1 day') AS d)"
    " SELECT (SELECT count(*) FROM e) AS total_students,"
    " (SELECT count(*) FROM e WHERE status <> 'dropped'"
    "   AND last_activity_at > now() - interval '30 days') AS active_students,"
    " (SELECT round(coalesce(avg(progress), 0)::numeric, 2)::float8 FROM e) AS average_progress,"
    " (SELECT CASE WHEN count(*) = 0 THEN 0 ELSE round(count(*) FILTER"
    "   (WHERE status = 'completed') * 100.0 / count(*), 2)::float8 END FROM e)"
    "   AS completion_rate,"
    " (SELECT average_rating::float8 FROM courses WHERE id = %(course)s) AS average_rating,"
    " NULL::float8 AS average_score,"
    " (SELECT coalesce(json_agg(json_build_object('date', date, 'count', count)"
    "   ORDER BY date), '[]'::json) FROM days) AS enrollments_by_day",
)
