"""Statements over assessments and their questions and answer keys (authoring and reading)."""

from __future__ import annotations

from typing import LiteralString

from server.db.statement import Statement

_ASSESSMENT: LiteralString = (
    "a.id::text AS id, a.course_id::text AS course_id, a.lesson_id::text AS lesson_id,"
    " a.title, a.description, a.kind, a.max_attempts, a.time_limit_minutes, a.due_at,"
    " a.late_deduction_percent::float8 AS late_deduction_percent,"
    " a.late_minimum_percent::float8 AS late_minimum_percent, a.scoring_policy,"
    " a.passing_percent::float8 AS passing_percent, a.published,"
    " a.max_score::float8 AS max_score, a.created_at, a.updated_at"
)

GET = Statement(
    "assessments.get", "SELECT " + _ASSESSMENT + " FROM assessments a WHERE a.id = %(id)s"
)

LOCK = Statement(
    "assessments.lock",
    "SELECT " + _ASSESSMENT + " FROM assessments a WHERE a.id = %(id)s FOR UPDATE",
)

LIST_FOR_COURSE = Statement(
    "assessments.list_for_course",
    "SELECT " + _ASSESSMENT + " FROM assessments a WHERE a.course_id = %(course)s"
    " AND (%(all)s OR a.published) ORDER BY a.created_at, a.id",
)

QUESTIONS = Statement(
    "assessments.questions",
    "SELECT q.id::text AS id, q.position, q.type, q.prompt, q.points::float8 AS points,"
    " q.options, k.key FROM questions q LEFT JOIN answer_keys k ON k.question_id = q.id"
    " WHERE q.assessment_id = %(assessment)s ORDER BY q.position",
)

QUESTIONS_OF_COURSE = Statement(
    "assessments.questions_of_course",
    "SELECT q.assessment_id::text AS assessment_id, q.id::text AS id, q.position, q.type,"
    " q.prompt, q.points::float8 AS points, q.options, k.key"
    " FROM questions q JOIN assessments a ON a.id = q.assessment_id"
    " LEFT JOIN answer_keys k ON k.question_id = q.id"
    " WHERE a.course_id = %(course)s AND (%(all)s OR a.published)"
    " ORDER BY q.assessment_id, q.position",
)

LESSON_IN_COURSE = Statement(
    "assessments.lesson_in_course",
    "SELECT EXISTS (SELECT 1 FROM lessons WHERE id = %(lesson)s AND course_id = %(course)s)",
)

CREATE = Statement(
    "assessments.create",
    "INSERT INTO assessments (course_id, lesson_id, title, description, kind, max_attempts,"
    " time_limit_minutes, due_at, late_deduction_percent, late_minimum_percent,"
    " scoring_policy, passing_percent, published)"
    " VALUES (%(course)s, %(lesson)s, %(title)s, %(description)s, %(kind)s,"
    " %(max_attempts)s, %(time_limit)s, %(due_at)s, %(late_deduction)s, %(late_minimum)s,"
    " %(scoring)s, %(passing)s, %(published)s) RETURNING id::text",
)

UPDATE = Statement(
    "assessments.update",
    "UPDATE assessments SET title = %(title)s, description = %(description)s,"
    " max_attempts = %(max_attempts)s, time_limit_minutes = %(time_limit)s,"
    " due_at = %(due_at)s, late_deduction_percent = %(late_deduction)s,"
    " late_minimum_percent = %(late_minimum)s, scoring_policy = %(scoring)s,"
    " passing_percent = %(passing)s, published = %(published)s, updated_at = now()"
    " WHERE id = %(id)s",
)

# The questions of an assessment (after DELETE_QUESTIONS), from a JSON array of
# {position, type, prompt, points, options, key}; its max score follows them.
DELETE_QUESTIONS = Statement(
    "assessments.delete_questions", "DELETE FROM questions WHERE assessment_id = %(assessment)s"
)

PUT_QUESTIONS = Statement(
    "assessments.put_questions",
    "WITH q AS (SELECT * FROM jsonb_to_recordset(%(questions)s::jsonb)"
    "   AS q(position int, type text, prompt text, points numeric, options jsonb, key jsonb)),"
    " made AS (INSERT INTO questions (assessment_id, position, type, prompt, points, options)"
    "   SELECT %(assessment)s, q.position, q.type, q.prompt, q.points,"
    "   CASE WHEN q.options IS NULL OR q.options = 'null'::jsonb THEN NULL"
    "     ELSE ARRAY(SELECT jsonb_array_elements_text(q.options)) END FROM q"
    "   RETURNING id, position),"
    " keys AS (INSERT INTO answer_keys (question_id, key)"
    "   SELECT made.id, q.key FROM made JOIN q USING (position)"
    "   WHERE q.key IS NOT NULL AND q.key <> 'null'::jsonb)"
    " UPDATE assessments SET max_score = (SELECT coalesce(sum(points), 0) FROM q),"
    " updated_at = now() WHERE id = %(assessment)s",
)

HAS_SUBMISSIONS = Statement(
    "assessments.has_submissions",
    "SELECT EXISTS (SELECT 1 FROM submissions WHERE assessment_id = %(assessment)s)",
)

DELETE = Statement("assessments.delete", "DELETE FROM assessments WHERE id = %(id)s")
