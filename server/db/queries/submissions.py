"""Statements over attempts, submissions, their answers and the grade history."""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

# Locks the student's enrollment in the assessment's course: a student's attempts and
# submissions of one course are serialised, so no two can exceed `maxAttempts`. What the
# lock protects is read by the statements after it (this one's snapshot predates the wait).
LOCK_TAKER = Statement(
    "submissions.lock_taker",
    "SELECT e.id::text AS enrollment_id, e.status AS enrollment_status"
    " FROM enrollments e JOIN assessments a ON a.course_id = e.course_id"
    " WHERE a.id = %(assessment)s AND e.user_id = %(user)s FOR UPDATE OF e",
)

ATTEMPTS_MADE = Statement(
    "submissions.attempts_made",
    "SELECT now() AS now, count(*) AS attempts_made FROM attempts"
    " WHERE assessment_id = %(assessment)s AND user_id = %(user)s",
)

OPEN_ATTEMPT = Statement(
    "submissions.open_attempt",
    "SELECT id::text AS id, number, started_at, deadline FROM attempts"
    " WHERE assessment_id = %(assessment)s AND user_id = %(user)s AND submitted_at IS NULL"
    " ORDER BY number DESC LIMIT 1",
)

ATTEMPT = Statement(
    "submissions.attempt",
    "SELECT id::text AS id, number, started_at, deadline, submitted_at IS NOT NULL AS submitted"
    " FROM attempts WHERE id = %(id)s AND assessment_id = %(assessment)s AND user_id = %(user)s",
)

START_ATTEMPT = Statement(
    "submissions.start_attempt",
    "INSERT INTO attempts (assessment_id, enrollment_id, user_id, number, deadline)"
    " VALUES (%(assessment)s, %(enrollment)s, %(user)s, %(number)s,"
    " CASE WHEN %(minutes)s::int IS NULL THEN NULL"
    "   ELSE now() + %(minutes)s::int * interval '1 minute' END)"
    " RETURNING id::text AS id, number, started_at, deadline",
)

_SUBMISSION: LiteralString = (
    "s.id::text AS id, s.assessment_id::text AS assessment_id, s.user_id::text AS user_id,"
    " s.attempt_number AS attempt, s.submitted_at, s.late, s.seconds_late,"
    " s.points_deducted::float8 AS points_deducted, s.score::float8 AS score,"
    " s.max_score::float8 AS max_score, s.status, s.feedback"
)

# The submission, its answers, and the attempt closed, in one statement.
SUBMIT = Statement(
    "submissions.submit",
    "WITH s AS (INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id,"
    "   attempt_number, late, seconds_late, max_score, raw_score, points_deducted, score,"
    "   status)"
    "   VALUES (%(attempt)s, %(assessment)s, %(enrollment)s, %(user)s, %(number)s, %(late)s,"
    "   %(seconds_late)s, %(max_score)s, %(raw_score)s, %(deducted)s, %(score)s, %(status)s)"
    "   RETURNING *),"
    " answers AS (INSERT INTO submission_answers (submission_id, question_id, value, points,"
    "   score) SELECT s.id, a.question_id, a.value, a.points, a.score FROM s,"
    "   jsonb_to_recordset(%(answers)s::jsonb) AS a(question_id uuid, value jsonb,"
    "   points numeric, score numeric)),"
    " closed AS (UPDATE attempts SET submitted_at = now() WHERE id = %(attempt)s)"
    " SELECT " + _SUBMISSION + " FROM s",
)

GET = Statement(
    "submissions.get",
    "SELECT " + _SUBMISSION + " FROM submissions s WHERE s.id = %(id)s",
)

LOCK_FOR_GRADING = Statement(
    "submissions.lock_for_grading",
    "SELECT " + _SUBMISSION + ", s.raw_score::float8 AS raw_score, c.instructor_id::text"
    " AS instructor_id, c.id::text AS course_id, a.late_deduction_percent::float8"
    " AS late_deduction_percent, a.late_minimum_percent::float8 AS late_minimum_percent"
    " FROM submissions s JOIN assessments a ON a.id = s.assessment_id"
    " JOIN courses c ON c.id = a.course_id WHERE s.id = %(id)s FOR UPDATE OF s",
)

ANSWERS = Statement(
    "submissions.answers",
    "SELECT sa.question_id::text AS question_id, sa.value, sa.points::float8 AS points,"
    " sa.score::float8 AS score FROM submission_answers sa JOIN questions q"
    " ON q.id = sa.question_id WHERE sa.submission_id = %(submission)s ORDER BY q.position",
)

SCORE_ANSWERS = Statement(
    "submissions.score_answers",
    "UPDATE submission_answers sa SET score = g.score"
    " FROM jsonb_to_recordset(%(scores)s::jsonb) AS g(question_id uuid, score numeric)"
    " WHERE sa.submission_id = %(submission)s AND sa.question_id = g.question_id",
)

ANSWER_TOTALS = Statement(
    "submissions.answer_totals",
    "SELECT coalesce(sum(score), 0)::float8 AS raw_score,"
    " count(*) FILTER (WHERE score IS NULL) AS unscored"
    " FROM submission_answers WHERE submission_id = %(submission)s",
)

SET_GRADE = Statement(
    "submissions.set_grade",
    "WITH h AS (INSERT INTO grade_history (submission_id, changed_by, from_score, to_score,"
    "   reason) VALUES (%(id)s, %(by)s, %(from)s, %(to)s, %(reason)s))"
    " UPDATE submissions SET raw_score = %(raw_score)s, points_deducted = %(deducted)s,"
    " score = %(to)s, status = %(status)s, feedback = coalesce(%(feedback)s, feedback),"
    " graded_at = now() WHERE id = %(id)s",
)

HISTORY = Statement(
    "submissions.history",
    "SELECT changed_by::text AS changed_by, changed_at, from_score::float8 AS from_score,"
    " to_score::float8 AS to_score, reason FROM grade_history"
    " WHERE submission_id = %(submission)s ORDER BY changed_at, id",
)

LIST = Statement(
    "submissions.list",
    "SELECT " + _SUBMISSION + ", count(*) OVER () AS total FROM submissions s"
    " WHERE s.assessment_id = %(assessment)s"
    " AND (%(user)s::uuid IS NULL OR s.user_id = %(user)s::uuid)"
    " ORDER BY s.submitted_at DESC, s.id LIMIT %(limit)s OFFSET %(offset)s",
)

COUNT = Statement(
    "submissions.count",
    "SELECT count(*) FROM submissions WHERE assessment_id = %(assessment)s"
    " AND (%(user)s::uuid IS NULL OR user_id = %(user)s::uuid)",
)

# The student's score that counts under the assessment's scoring policy, as a percentage.
EFFECTIVE_PERCENT = Statement(
    "submissions.effective_percent",
    "SELECT CASE WHEN a.max_score = 0 THEN 100 ELSE (CASE a.scoring_policy"
    "   WHEN 'highest' THEN max(s.score)"
    "   WHEN 'average' THEN avg(s.score)"
    "   WHEN 'first' THEN (array_agg(s.score ORDER BY s.attempt_number))[1]"
    "   ELSE (array_agg(s.score ORDER BY s.attempt_number DESC))[1] END)"
    "   * 100 / a.max_score END::float8 AS percent, a.passing_percent::float8 AS passing,"
    " a.lesson_id::text AS lesson_id"
    " FROM assessments a JOIN submissions s ON s.assessment_id = a.id"
    " WHERE a.id = %(assessment)s AND s.user_id = %(user)s AND s.status = 'graded'"
    " GROUP BY a.id",
)

AWARD_PERFECT = Statement(
    "submissions.award_perfect",
    "INSERT INTO achievements (user_id, rule, title, description, badge)"
    " VALUES (%(user)s, 'perfect_score', 'Flawless', 'A perfect score on an assessment',"
    " 'perfect-score') ON CONFLICT (user_id, rule) WHERE rule IS NOT NULL DO NOTHING",
)

# One page of a course's gradebook in one statement: per student, each published
# assessment's effective score by its scoring policy, and the course grade (points earned
# over points possible, a missing submission counted as 0).
GRADEBOOK = Statement(
    "submissions.gradebook",
    "WITH students AS (SELECT e.user_id, u.first_name || ' ' || u.last_name AS name, u.email,"
    "   e.status, e.progress FROM enrollments e JOIN users u ON u.id = e.user_id"
    "   WHERE e.course_id = %(course)s ORDER BY u.last_name, u.first_name, e.user_id"
    "   LIMIT %(limit)s OFFSET %(offset)s),"
    " items AS (SELECT id, max_score, scoring_policy, created_at FROM assessments"
    "   WHERE course_id = %(course)s AND published),"
    " effective AS (SELECT s.assessment_id, s.user_id, CASE i.scoring_policy"
    "     WHEN 'highest' THEN max(s.score)"
    "     WHEN 'average' THEN round(avg(s.score), 2)"
    "     WHEN 'first' THEN (array_agg(s.score ORDER BY s.attempt_number))[1]"
    "     ELSE (array_agg(s.score ORDER BY s.attempt_number DESC))[1] END AS score,"
    "   count(*) AS attempts, bool_or(s.status = 'pending_review') AS pending"
    "   FROM submissions s JOIN items i ON i.id = s.assessment_id"
    "   WHERE s.user_id IN (SELECT user_id FROM students)"
    "   GROUP BY s.assessment_id, s.user_id, i.scoring_policy)"
    " SELECT st.user_id::text AS user_id, st.name, st.email, st.status,"
    " st.progress::float8 AS progress,"
    " CASE WHEN sum(i.max_score) > 0 THEN round(coalesce(sum(ef.score), 0) * 100"
    "   / sum(i.max_score), 2)::float8 END AS course_grade,"
    " coalesce(json_agg(json_build_object('assessmentId', i.id, 'score', ef.score,"
    "   'maxScore', i.max_score, 'attempts', coalesce(ef.attempts, 0),"
    "   'pendingReview', coalesce(ef.pending, false)) ORDER BY i.created_at, i.id)"
    "   FILTER (WHERE i.id IS NOT NULL), '[]'::json) AS scores"
    " FROM students st LEFT JOIN items i ON true"
    " LEFT JOIN effective ef ON ef.assessment_id = i.id AND ef.user_id = st.user_id"
    " GROUP BY st.user_id, st.name, st.email, st.status, st.progress"
    " ORDER BY min(st.name), st.user_id",
)

GRADEBOOK_COLUMNS = Statement(
    "submissions.gradebook_columns",
    "SELECT id::text AS id, title, max_score::float8 AS max_score, scoring_policy"
    " FROM assessments WHERE course_id = %(course)s AND published ORDER BY created_at, id",
)

COURSE_STUDENT_COUNT = Statement(
    "submissions.course_student_count",
    "SELECT count(*) FROM enrollments WHERE course_id = %(course)s",
)
