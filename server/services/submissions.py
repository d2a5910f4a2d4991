"""Taking assessments: attempts on the server's clock, submissions graded in their transaction.

A student's attempts at one course are serialised by a lock on their enrollment, so two
concurrent submissions can never exceed `maxAttempts`; attempt numbers are unique per
student and assessment besides. A timed attempt may be submitted until its deadline plus
`GRACE_SECONDS`. Objective questions are scored at once; an essay leaves the submission
`pending_review` for a teacher. A graded submission that passes completes the lesson the
assessment is tied to, and a perfect score earns its achievement, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from schemas.assessments import (
    AnswerScore,
    AttemptStarted,
    Submission,
    SubmissionCreate,
    SubmissionPage,
)
from schemas.problem import FieldError
from server.db.queries import submissions as q
from server.db.rows import narrowed
from server.db.unit import UnitOfWork
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.services.assessments import AssessmentRow, Assessments, gradable
from server.services.courses import Courses
from server.services.enrollments import Enrollments
from server.services.grading import (
    GradableQuestion,
    answer_error,
    apply_late_policy,
    score_answer,
)
from server.services.viewer import Viewer

GRACE_SECONDS = 30
_answers_json = msgspec.json.Encoder()


class _Enrolled(msgspec.Struct):
    enrollment_id: str
    enrollment_status: str


class _Made(msgspec.Struct):
    now: dt.datetime
    attempts_made: int


class _Taker(msgspec.Struct):
    enrollment_id: str
    now: dt.datetime
    attempts_made: int


class _Attempt(msgspec.Struct, kw_only=True):
    id: str
    number: int
    started_at: dt.datetime
    deadline: dt.datetime | None
    submitted: bool = False


class _Effective(msgspec.Struct):
    percent: float
    passing: float
    lesson_id: str | None


class _Listed(Submission, kw_only=True):
    total: int


def _checked_answers(
    questions: dict[str, GradableQuestion], body: SubmissionCreate
) -> dict[str, Any]:
    """The answers by question id, once each is an answer its question can take."""
    errors: list[FieldError] = []
    given: dict[str, Any] = {}
    for index, answer in enumerate(body.answers):
        question = questions.get(answer.question_id)
        field = f"answers[{index}]"
        if question is None:
            message = "Not a question of this assessment"
            errors.append(FieldError(field=f"{field}.questionId", message=message))
        elif answer.question_id in given:
            errors.append(FieldError(field=f"{field}.questionId", message="Answered twice"))
        elif (problem := answer_error(question, answer.value)) is not None:
            errors.append(FieldError(field=f"{field}.value", message=problem))
        given[answer.question_id] = answer.value
    if errors:
        raise ValidationFailed("The request is invalid", details=errors)
    return given


class Submissions:
    def __init__(
        self, courses: Courses, assessments: Assessments, enrollments: Enrollments
    ) -> None:
        self._courses = courses
        self._assessments = assessments
        self._enrollments = enrollments

    async def _taker(
        self, uow: UnitOfWork, viewer: Viewer, assessment_id: str
    ) -> tuple[AssessmentRow, _Taker]:
        assessment = await self._assessments.load(uow, assessment_id)
        params = {"assessment": assessment_id, "user": viewer.user_id}
        enrolled = await uow.one(q.LOCK_TAKER, params, _Enrolled)
        if not assessment.published or enrolled is None or enrolled.enrollment_status == "dropped":
            await self._courses.access(uow, viewer, assessment.course_id)
            raise NotFound("Assessment not found")
        made = await uow.one(q.ATTEMPTS_MADE, params, _Made)
        assert made is not None
        return assessment, _Taker(enrolled.enrollment_id, made.now, made.attempts_made)

    async def _new_attempt(
        self, uow: UnitOfWork, viewer: Viewer, assessment: AssessmentRow, taker: _Taker
    ) -> _Attempt:
        if assessment.max_attempts is not None and taker.attempts_made >= assessment.max_attempts:
            raise Conflict("No attempt is left for this assessment")
        attempt = await uow.one(
            q.START_ATTEMPT,
            {
                "assessment": assessment.id,
                "enrollment": taker.enrollment_id,
                "user": viewer.user_id,
                "number": taker.attempts_made + 1,
                "minutes": assessment.time_limit_minutes,
            },
            _Attempt,
        )
        assert attempt is not None
        return attempt

    @staticmethod
    def _still_open(attempt: _Attempt, now: dt.datetime) -> bool:
        return attempt.deadline is None or now <= attempt.deadline + dt.timedelta(
            seconds=GRACE_SECONDS
        )

    async def start_attempt(
        self, uow: UnitOfWork, viewer: Viewer, assessment_id: str
    ) -> tuple[AttemptStarted, bool]:
        """The open attempt if one is still running, else a new one; whether it is new."""
        assessment, taker = await self._taker(uow, viewer, assessment_id)
        open_attempt = await uow.one(
            q.OPEN_ATTEMPT, {"assessment": assessment_id, "user": viewer.user_id}, _Attempt
        )
        if open_attempt is not None and self._still_open(open_attempt, taker.now):
            attempt, created = open_attempt, False
        else:
            attempt, created = await self._new_attempt(uow, viewer, assessment, taker), True
        started = AttemptStarted(
            id=attempt.id,
            number=attempt.number,
            started_at=attempt.started_at,
            deadline=attempt.deadline,
        )
        return started, created

    async def submit(
        self, uow: UnitOfWork, viewer: Viewer, assessment_id: str, body: SubmissionCreate
    ) -> Submission:
        assessment, taker = await self._taker(uow, viewer, assessment_id)
        questions = {
            r.id: gradable(r) for r in await self._assessments.questions(uow, assessment_id)
        }
        errors: list[FieldError] = []
        given: dict[str, Any] = {}
        for index, answer in enumerate(body.answers):
            question = questions.get(answer.question_id)
            if question is None:
                errors.append(
                    FieldError(
                        field=f"answers[{index}].questionId",
                        message="Not a question of this assessment",
                    )
                )
            elif answer.question_id in given:
                errors.append(
                    FieldError(field=f"answers[{index}].questionId", message="Answered twice")
                )
            elif (problem := answer_error(question, answer.value)) is not None:
                errors.append(FieldError(field=f"answers[{index}].value", message=problem))
            given[answer.question_id] = answer.value
        if errors:
            raise ValidationFailed("The request is invalid", details=errors)
        attempt = await self._attempt_for(uow, viewer, assessment, taker, body.attempt_id)
        if not self._still_open(attempt, taker.now):
            raise Conflict("The time for this attempt is over")
        scored = [
            AnswerScore(
                question_id=question.id,
                value=given.get(question.id),
                points=question.points,
                score=score_answer(question, given.get(question.id)),
            )
            for question in questions.values()
        ]
        pending = any(item.score is None for item in scored)
        raw = round(sum(item.score or 0.0 for item in scored), 2)
        seconds_late = (taker.now - assessment.due_at).total_seconds() if assessment.due_at else 0.0
        late = apply_late_policy(
            raw,
            assessment.max_score,
            seconds_late,
            assessment.late_deduction_percent,
            assessment.late_minimum_percent,
        )
        row = await uow.one(
            q.SUBMIT,
            {
                "attempt": attempt.id,
                "assessment": assessment_id,
                "enrollment": taker.enrollment_id,
                "user": viewer.user_id,
                "number": attempt.number,
                "late": late.late,
                "seconds_late": late.seconds_late,
                "max_score": assessment.max_score,
                "raw_score": raw,
                "deducted": late.points_deducted,
                "score": late.score,
                "status": "pending_review" if pending else "graded",
                "answers": _answers_json.encode(
                    [msgspec.structs.asdict(item) for item in scored]
                ).decode(),
            },
            Submission,
        )
        assert row is not None
        if not pending:
            await self.after_grading(uow, viewer.user_id, assessment, late.score)
        return msgspec.structs.replace(row, answers=scored)

    async def _attempt_for(
        self,
        uow: UnitOfWork,
        viewer: Viewer,
        assessment: AssessmentRow,
        taker: _Taker,
        attempt_id: str | None,
    ) -> _Attempt:
        if attempt_id is not None:
            attempt = await uow.one(
                q.ATTEMPT,
                {"id": attempt_id, "assessment": assessment.id, "user": viewer.user_id},
                _Attempt,
            )
            if attempt is None:
                raise NotFound("Attempt not found")
            if attempt.submitted:
                raise Conflict("This attempt was already submitted")
            return attempt
        open_attempt = await uow.one(
            q.OPEN_ATTEMPT, {"assessment": assessment.id, "user": viewer.user_id}, _Attempt
        )
        if open_attempt is not None and self._still_open(open_attempt, taker.now):
            return open_attempt
        return await self._new_attempt(uow, viewer, assessment, taker)

    async def after_grading(
        self, uow: UnitOfWork, user_id: str, assessment: AssessmentRow, score: float
    ) -> None:
        """What a graded submission earns: the tied lesson once passed, a perfect score."""
        if assessment.max_score > 0 and score >= assessment.max_score:
            await uow.execute(q.AWARD_PERFECT, {"user": user_id})
        if assessment.lesson_id is None:
            return
        effective = await uow.one(
            q.EFFECTIVE_PERCENT, {"assessment": assessment.id, "user": user_id}, _Effective
        )
        if effective is not None and effective.percent >= effective.passing:
            await self._enrollments.complete_passed_lesson(
                uow, user_id, assessment.course_id, assessment.lesson_id
            )

    async def list_for(
        self,
        uow: UnitOfWork,
        viewer: Viewer,
        assessment_id: str,
        *,
        page: int,
        limit: int,
    ) -> SubmissionPage:
        assessment = await self._assessments.load(uow, assessment_id)
        access = await self._courses.access(uow, viewer, assessment.course_id)
        staff = viewer.is_admin or access.instructor_id == viewer.user_id
        if not staff and not viewer.is_student:
            raise Forbidden("Only the course's instructor or an admin may see its submissions")
        params = {
            "assessment": assessment_id,
            "user": None if staff else viewer.user_id,
            "limit": limit,
            "offset": (page - 1) * limit,
        }
        rows = await uow.all(q.LIST, params, _Listed)
        total = rows[0].total if rows else int(await uow.value(q.COUNT, params) or 0)
        return SubmissionPage(
            items=[narrowed(r, Submission) for r in rows], page=page, limit=limit, total=total
        )
