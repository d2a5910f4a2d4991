"""Statements read by the CSV exports through a server-side cursor (`server.db.streaming`).

Each is planned for its first rows: the export's order is an index's order (no sort before
the first row), and per-row figures are index lookups rather than a join over everything.
"""

from __future__ import annotations

from server.db.statement import Statement

# The column names are the CSV header. `average_score` is the mean `score` of the
# enrollment's submissions, `average_percent` the mean of score / max score x 100.
ENROLLMENTS = Statement(
    "exports.enrollments",
    "SELECT e.id::text AS enrollment_id, u.id::text AS user_id, u.email AS user_email,"
    " u.first_name || ' ' || u.last_name AS user_name, c.id::text AS course_id,"
    " c.title AS course_title, e.status, e.progress::float8 AS progress, e.enrolled_at,"
    " e.completed_at, s.submissions, s.average_score, s.average_percent"
    " FROM enrollments e JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id"
    " CROSS JOIN LATERAL (SELECT count(*) AS submissions,"
    "   round(avg(sub.score), 2)::float8 AS average_score,"
    "   round(avg(sub.score * 100 / nullif(sub.max_score, 0)), 2)::float8 AS average_percent"
    "   FROM submissions sub WHERE sub.enrollment_id = e.id) s"
    " WHERE (%(course)s::uuid IS NULL OR e.course_id = %(course)s::uuid)"
    " AND (%(since)s::timestamptz IS NULL OR e.enrolled_at >= %(since)s::timestamptz)"
    " ORDER BY e.enrolled_at, e.id",
)

# The gradebook's columns: the course's published assessments, in the order of GRADEBOOK.
GRADEBOOK_ASSESSMENTS = Statement(
    "exports.gradebook_assessments",
    "SELECT id::text AS id, title, max_score::float8 AS max_score, scoring_policy"
    " FROM assessments WHERE course_id = %(course)s AND published ORDER BY created_at, id",
)

# Per student, each published assessment's effective score by its scoring policy over the
# student's submissions (`score` is after late deductions): highest = max, latest = the last
# attempt's, first = the first attempt's, average = the mean; NULL without a submission.
# The course grade is the sum of effective scores (a missing one counts 0) over the sum of
# the maximum scores, x 100; NULL when the course has nothing to score.
GRADEBOOK = Statement(
    "exports.gradebook",
    "WITH a AS (SELECT id, scoring_policy, max_score,"
    "   row_number() OVER (ORDER BY created_at, id) AS position"
    "   FROM assessments WHERE course_id = %(course)s AND published),"
    " total AS (SELECT sum(max_score) AS max_score FROM a)"
    " SELECT u.first_name || ' ' || u.last_name AS name, u.email, e.status,"
    " e.progress::float8 AS progress, g.scores,"
    " round(g.earned * 100 / nullif((SELECT max_score FROM total), 0), 2)::float8"
    "   AS course_grade"
    " FROM enrollments e JOIN users u ON u.id = e.user_id"
    " CROSS JOIN LATERAL (SELECT"
    "   coalesce(array_agg(round(x.score, 2)::float8 ORDER BY a.position), '{}') AS scores,"
    "   coalesce(sum(x.score), 0) AS earned"
    "   FROM a CROSS JOIN LATERAL (SELECT CASE a.scoring_policy"
    "     WHEN 'highest' THEN max(s.score)"
    "     WHEN 'average' THEN avg(s.score)"
    "     WHEN 'first' THEN (array_agg(s.score ORDER BY s.attempt_number))[1]"
    "     ELSE (array_agg(s.score ORDER BY s.attempt_number DESC))[1] END AS score"
    "     FROM submissions s WHERE s.assessment_id = a.id AND s.user_id = e.user_id) x) g"
    " WHERE e.course_id = %(course)s"
    " ORDER BY u.last_name, u.first_name, u.id",
)
