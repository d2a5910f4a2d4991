"""Assessments: authored by the course's instructor or an admin, read by the enrolled.

Students see published assessments of courses they are enrolled in, never an answer key;
staff of the course see every assessment with its keys. Changing the questions of an
assessment that has submissions is refused (409): grades were given against them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from schemas.assessments import (
    Assessment,
    AssessmentCreate,
    AssessmentList,
    AssessmentUpdate,
    LatePolicy,
    Question,
    QuestionIn,
)
from schemas.courses import Enrollment
from schemas.problem import FieldError
from server.db.queries import assessments as q
from server.db.queries import enrollments as eq
from server.db.unit import UnitOfWork
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.services.courses import CourseAccess, Courses
from server.services.grading import GradableQuestion, key_of, question_errors
from server.services.plain_text import plain_text
from server.services.viewer import Viewer

_encoder = msgspec.json.Encoder()


class AssessmentRow(msgspec.Struct, kw_only=True):
    id: str
    course_id: str
    lesson_id: str | None
    title: str
    description: str | None
    kind: str
    max_attempts: int | None
    time_limit_minutes: int | None
    due_at: dt.datetime | None
    late_deduction_percent: float | None
    late_minimum_percent: float | None
    scoring_policy: str
    passing_percent: float
    published: bool
    max_score: float
    created_at: dt.datetime
    updated_at: dt.datetime


class QuestionRow(msgspec.Struct, kw_only=True):
    id: str
    position: int
    type: str
    prompt: str
    points: float
    options: list[str] | None
    key: dict[str, Any] | None


class _CourseQuestionRow(QuestionRow, kw_only=True):
    assessment_id: str


def gradable(row: QuestionRow) -> GradableQuestion:
    return GradableQuestion(
        id=row.id,
        type=row.type,  # type: ignore[arg-type]
        points=row.points,
        options=row.options,
        key=row.key,
    )


def _question(row: QuestionRow, *, with_key: bool) -> Question:
    key = (row.key or {}) if with_key else {}
    return Question(
        id=row.id,
        position=row.position,
        type=row.type,  # type: ignore[arg-type]
        prompt=row.prompt,
        points=row.points,
        options=row.options,
        correct=key.get("correct"),
        accepted=key.get("accepted"),
        value=key.get("value"),
        tolerance=key.get("tolerance"),
    )


def _assessment(row: AssessmentRow, questions: list[Question]) -> Assessment:
    late = (
        LatePolicy(
            deduction_percent_per_day=row.late_deduction_percent,
            minimum_percent=row.late_minimum_percent,
        )
        if row.late_deduction_percent is not None and row.late_minimum_percent is not None
        else None
    )
    return Assessment(
        id=row.id,
        course_id=row.course_id,
        lesson_id=row.lesson_id,
        title=row.title,
        description=row.description,
        kind=row.kind,  # type: ignore[arg-type]
        max_attempts=row.max_attempts,
        time_limit_minutes=row.time_limit_minutes,
        due_at=row.due_at,
        late_policy=late,
        scoring_policy=row.scoring_policy,  # type: ignore[arg-type]
        passing_percent=row.passing_percent,
        published=row.published,
        max_score=row.max_score,
        created_at=row.created_at,
        updated_at=row.updated_at,
        questions=questions,
    )


def _questions_json(questions: list[QuestionIn]) -> str:
    errors = [e for i, question in enumerate(questions) for e in question_errors(i, question)]
    if errors:
        raise ValidationFailed("The request is invalid", details=errors)
    return _encoder.encode(
        [
            {
                "position": index + 1,
                "type": question.type,
                "prompt": plain_text(question.prompt) or question.prompt,
                "points": question.points,
                "options": question.options,
                "key": key_of(question),
            }
            for index, question in enumerate(questions)
        ]
    ).decode()


class Assessments:
    def __init__(self, courses: Courses) -> None:
        self._courses = courses

    async def _is_staff(self, viewer: Viewer, access: CourseAccess) -> bool:
        return viewer.is_admin or access.instructor_id == viewer.user_id

    async def _student_may_read(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> bool:
        enrollment = await uow.one(
            eq.GET_OWN, {"user": viewer.user_id, "course": course_id}, Enrollment
        )
        return enrollment is not None and enrollment.status != "dropped"

    async def load(self, uow: UnitOfWork, assessment_id: str) -> AssessmentRow:
        row = await uow.one(q.GET, {"id": assessment_id}, AssessmentRow)
        if row is None:
            raise NotFound("Assessment not found")
        return row

    async def questions(self, uow: UnitOfWork, assessment_id: str) -> list[QuestionRow]:
        return await uow.all(q.QUESTIONS, {"assessment": assessment_id}, QuestionRow)

    async def get(self, uow: UnitOfWork, viewer: Viewer, assessment_id: str) -> Assessment:
        row = await self.load(uow, assessment_id)
        access = await self._courses.access(uow, viewer, row.course_id)
        staff = await self._is_staff(viewer, access)
        if not staff and not (
            row.published and await self._student_may_read(uow, viewer, row.course_id)
        ):
            raise NotFound("Assessment not found")
        questions = await self.questions(uow, assessment_id)
        return _assessment(row, [_question(r, with_key=staff) for r in questions])

    async def list_for(self, uow: UnitOfWork, viewer: Viewer, course_id: str) -> AssessmentList:
        access = await self._courses.access(uow, viewer, course_id)
        staff = await self._is_staff(viewer, access)
        if not staff and not await self._student_may_read(uow, viewer, course_id):
            raise Forbidden("Enroll in the course to see its assessments")
        rows = await uow.all(q.LIST_FOR_COURSE, {"course": course_id, "all": staff}, AssessmentRow)
        questions: dict[str, list[Question]] = {row.id: [] for row in rows}
        for question in await uow.all(
            q.QUESTIONS_OF_COURSE, {"course": course_id, "all": staff}, _CourseQuestionRow
        ):
            if question.assessment_id in questions:
                questions[question.assessment_id].append(_question(question, with_key=staff))
        return AssessmentList(items=[_assessment(row, questions[row.id]) for row in rows])

    async def create(
        self, uow: UnitOfWork, viewer: Viewer, course_id: str, body: AssessmentCreate
    ) -> Assessment:
        await self._courses.lock_for_edit(uow, viewer, course_id)
        questions = _questions_json(body.questions)
        if body.lesson_id is not None and not await uow.value(
            q.LESSON_IN_COURSE, {"lesson": body.lesson_id, "course": course_id}
        ):
            raise ValidationFailed(
                "The request is invalid",
                details=[FieldError(field="lessonId", message="Not a lesson of this course")],
            )
        assessment_id = await uow.value(
            q.CREATE,
            {
                "course": course_id,
                "lesson": body.lesson_id,
                "title": plain_text(body.title),
                "description": plain_text(body.description) if body.description else None,
                "kind": body.kind,
                "max_attempts": body.max_attempts,
                "time_limit": body.time_limit_minutes,
                "due_at": body.due_at,
                "late_deduction": body.late_policy.deduction_percent_per_day
                if body.late_policy
                else None,
                "late_minimum": body.late_policy.minimum_percent if body.late_policy else None,
                "scoring": body.scoring_policy,
                "passing": body.passing_percent,
                "published": body.published,
            },
        )
        await uow.execute(q.PUT_QUESTIONS, {"assessment": assessment_id, "questions": questions})
        return await self.get(uow, viewer, str(assessment_id))

    async def _lock_for_edit(
        self, uow: UnitOfWork, viewer: Viewer, assessment_id: str
    ) -> AssessmentRow:
        row = await uow.one(q.LOCK, {"id": assessment_id}, AssessmentRow)
        if row is None:
            raise NotFound("Assessment not found")
        await self._courses.lock_for_edit(uow, viewer, row.course_id)
        return row

    async def update(
        self, uow: UnitOfWork, viewer: Viewer, assessment_id: str, body: AssessmentUpdate
    ) -> Assessment:
        row = await self._lock_for_edit(uow, viewer, assessment_id)
        if body.questions is not msgspec.UNSET:
            questions = _questions_json(body.questions)
            if await uow.value(q.HAS_SUBMISSIONS, {"assessment": assessment_id}):
                raise Conflict("The questions cannot change once there are submissions")
            await uow.execute(q.DELETE_QUESTIONS, {"assessment": assessment_id})
            await uow.execute(
                q.PUT_QUESTIONS, {"assessment": assessment_id, "questions": questions}
            )
        late: LatePolicy | None = (
            LatePolicy(
                deduction_percent_per_day=row.late_deduction_percent,
                minimum_percent=row.late_minimum_percent,
            )
            if row.late_deduction_percent is not None and row.late_minimum_percent is not None
            else None
        )
        if body.late_policy is not msgspec.UNSET:
            late = body.late_policy

        def pick(value: Any, current: Any) -> Any:
            return current if value is msgspec.UNSET else value

        await uow.execute(
            q.UPDATE,
            {
                "id": assessment_id,
                "title": plain_text(pick(body.title, row.title)),
                "description": pick(body.description, row.description),
                "max_attempts": pick(body.max_attempts, row.max_attempts),
                "time_limit": pick(body.time_limit_minutes, row.time_limit_minutes),
                "due_at": pick(body.due_at, row.due_at),
                "late_deduction": late.deduction_percent_per_day if late else None,
                "late_minimum": late.minimum_percent if late else None,
                "scoring": pick(body.scoring_policy, row.scoring_policy),
                "passing": pick(body.passing_percent, row.passing_percent),
                "published": pick(body.published, row.published),
            },
        )
        return await self.get(uow, viewer, assessment_id)

    async def delete(self, uow: UnitOfWork, viewer: Viewer, assessment_id: str) -> None:
        await self._lock_for_edit(uow, viewer, assessment_id)
        if await uow.value(q.HAS_SUBMISSIONS, {"assessment": assessment_id}):
            raise Conflict("An assessment with submissions cannot be deleted; unpublish it")
        await uow.execute(q.DELETE, {"id": assessment_id})
