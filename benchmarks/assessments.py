"""The assessment scenarios' data: a quiz the benchmark students submit, and a seeded gradebook.

- ``assessment-submit``: a course of its own (outside the catalogue, so no enrollment or
  completion row of the other scenarios touches it) with every token student enrolled, and one
  published quiz of 20 objective questions with unlimited attempts, created through the API as
  an author would; each request is one student's submission of the same 20 answers.
- ``gradebook-page``: a course of its own with ``GRADEBOOK_STUDENTS`` students and
  ``GRADEBOOK_ASSESSMENTS`` published assessments, each student with one or two graded
  submissions of each, written with SQL; each request reads the whole page as an admin.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

QUIZ_QUESTIONS = 20
GRADEBOOK_STUDENTS = 100
GRADEBOOK_ASSESSMENTS = 20
ASSESSMENT_TABLES = "assessments, questions, answer_keys, attempts, submissions, submission_answers"

_COURSE = (
    "INSERT INTO courses (slug, title, description, category, level, duration,"
    " learning_objectives, instructor_id, status, published_at)"
    " SELECT %(slug)s, %(title)s, 'A course the benchmark seeds for its assessments.',"
    " 'benchmarks', 'beginner', 60, '{Measure}',"
    " (SELECT id FROM users WHERE role = 'teacher' ORDER BY created_at LIMIT 1),"
    " 'published', now() RETURNING id::text"
)


def quiz_questions() -> list[dict[str, Any]]:
    """20 objective questions: 8 single choice, 6 true/false, 6 numeric."""
    questions: list[dict[str, Any]] = []
    for i in range(QUIZ_QUESTIONS):
        prompt = f"Question {i + 1}"
        if i % 10 < 4:
            options = [f"Option {c}" for c in "ABCD"]
            questions.append(
                {"type": "single_choice", "prompt": prompt, "points": 2, "options": options,
                 "correct": i % 4}
            )  # fmt: skip
        elif i % 10 < 7:
            questions.append(
                {"type": "true_false", "prompt": prompt, "points": 1, "correct": i % 2 == 0}
            )
        else:
            questions.append(
                {"type": "numeric", "prompt": prompt, "points": 3, "value": i * 1.5,
                 "tolerance": 0.01}
            )  # fmt: skip
    return questions


def answers(questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A submission body answering every question, one in five wrongly."""
    out = []
    for index, q in enumerate(questions):
        wrong = index % 5 == 4
        value: Any
        if q["type"] == "single_choice":
            value = (q["correct"] + 1) % len(q["options"]) if wrong else q["correct"]
        elif q["type"] == "true_false":
            value = (not q["correct"]) if wrong else q["correct"]
        else:
            value = q["value"] + 1 if wrong else q["value"]
        out.append({"questionId": q["id"], "value": value})
    return {"answers": out}


def _post(url: str, token: str, body: object) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        found: dict[str, Any] = json.loads(response.read())
    return found


@dataclass(frozen=True)
class Quiz:
    """The submission scenario's quiz: its course, id and one body every student submits."""

    course_id: str
    assessment_id: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/api/assessments/{self.assessment_id}/submissions"


def seed_quiz(dsn: str, base_url: str, admin_token: str, student_ids: Sequence[str]) -> Quiz:
    """A course with ``student_ids`` enrolled and a published quiz of 20 objective questions,
    unlimited attempts (created through ``base_url`` with ``admin_token``)."""
    run = uuid.uuid4().hex[:8]
    with psycopg.connect(dsn) as conn:
        found = conn.execute(_COURSE, {"slug": f"bench-quiz-{run}", "title": "Benchmark quiz"})
        row = found.fetchone()
        assert row is not None
        course_id: str = row[0]
        conn.execute(
            "INSERT INTO enrollments (user_id, course_id)"
            " SELECT unnest(%(users)s::uuid[]), %(course)s",
            {"users": list(student_ids), "course": course_id},
        )
        conn.execute(
            "UPDATE courses SET total_enrollments = %(n)s WHERE id = %(course)s",
            {"n": len(student_ids), "course": course_id},
        )
    created = _post(
        f"{base_url}/api/courses/{course_id}/assessments",
        admin_token,
        {
            "title": "Benchmark quiz of 20 questions",
            "kind": "quiz",
            "questions": quiz_questions(),
            "maxAttempts": None,
            "scoringPolicy": "highest",
            "published": True,
        },
    )
    # Statistics, as autovacuum would have them on a settled database: just after seed_demo's
    # bulk insert the planner has none for the question tables, and its generic plan of the
    # questions a submission loads then scans every answer key (6 ms, not 0.06 ms).
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ANALYZE {ASSESSMENT_TABLES}")
    return Quiz(course_id, created["id"], answers(created["questions"]))


_GRADEBOOK = (
    """
INSERT INTO users (email, password_hash, first_name, last_name)
SELECT 'gradebook-' || %(run)s || '-' || i || '@bench.example', 'x', 'Student',
    'Number ' || lpad(i::text, 4, '0')
FROM generate_series(1, %(students)s) AS i;

INSERT INTO enrollments (user_id, course_id, progress)
SELECT id, %(course)s, (random() * 100)::real FROM users
WHERE email LIKE 'gradebook-' || %(run)s || '-%%';

UPDATE courses SET total_enrollments = %(students)s WHERE id = %(course)s;

INSERT INTO assessments (course_id, title, kind, scoring_policy, max_score, published,
    max_attempts, created_at)
SELECT %(course)s, 'Assessment ' || i, 'quiz',
    (ARRAY['highest', 'latest', 'average', 'first'])[1 + i %% 4], 20, true, NULL,
    now() - interval '30 days' + i * interval '1 hour'
FROM generate_series(1, %(assessments)s) AS i;

WITH t AS (
    INSERT INTO attempts (assessment_id, enrollment_id, user_id, number, submitted_at)
    SELECT a.id, e.id, e.user_id, n, now()
    FROM assessments a JOIN enrollments e ON e.course_id = a.course_id,
        generate_series(1, 2) AS n
    WHERE a.course_id = %(course)s AND (n = 1 OR (hashtext(e.id::text || a.id::text) %% 2) = 0)
    RETURNING id, assessment_id, enrollment_id, user_id, number)
INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id, attempt_number,
    max_score, raw_score, score, status, graded_at)
SELECT id, assessment_id, enrollment_id, user_id, number, 20, s, s, 'graded', now()
FROM (SELECT t.*, round((random() * 20)::numeric, 2) AS s FROM t) AS scored;

ANALYZE """
    + ASSESSMENT_TABLES
)


def seed_gradebook(
    dsn: str, students: int = GRADEBOOK_STUDENTS, assessments: int = GRADEBOOK_ASSESSMENTS
) -> str:
    """A course of ``students`` enrolled students and ``assessments`` published assessments,
    each student with one or two graded submissions of each; returns the course id."""
    run = uuid.uuid4().hex[:8]
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            _COURSE, {"slug": f"bench-gradebook-{run}", "title": "Benchmark gradebook"}
        )
        row = found.fetchone()
        assert row is not None
        course_id: str = row[0]
        params = {"run": run, "course": course_id, "students": students,
                  "assessments": assessments}  # fmt: skip
        for statement in _GRADEBOOK.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)
    return course_id


def gradebook_path(course_id: str, limit: int = GRADEBOOK_STUDENTS) -> str:
    return f"/api/courses/{course_id}/gradebook?limit={limit}"
