"""Grading by teachers: scores per question or a whole score, each change kept in history.

A grade locks the submission row; per-question scores must lie within each question's
points, the late policy applies to the new raw score as it did to the first, and a whole
`score` (within 0 and the maximum) overrides both. Every change appends who, when, from,
to and why to the grade history, in the transaction that makes it.
"""

from __future__ import annotations

import msgspec

from schemas.assessments import AnswerScore, GradeChange, GradedSubmission, GradeRequest
from schemas.problem import FieldError
from server.db.queries import submissions as q
from server.db.unit import UnitOfWork
from server.errors import Forbidden, NotFound, ValidationFailed
from server.services import audit
from server.services.assessments import Assessments
from server.services.grading import apply_late_policy
from server.services.plain_text import plain_text
from server.services.submissions import Submissions
from server.services.viewer import Viewer

_encoder = msgspec.json.Encoder()


class _Locked(msgspec.Struct, kw_only=True):
    id: str
    assessment_id: str
    user_id: str
    attempt: int
    score: float
    raw_score: float
    max_score: float
    seconds_late: int
    status: str
    instructor_id: str
    course_id: str
    late_deduction_percent: float | None
    late_minimum_percent: float | None
    submitted_at: object
    late: bool
    points_deducted: float
    feedback: str | None


class _Totals(msgspec.Struct):
    raw_score: float
    unscored: int


class Grades:
    def __init__(self, assessments: Assessments, submissions: Submissions) -> None:
        self._assessments = assessments
        self._submissions = submissions

    async def grade(
        self, uow: UnitOfWork, viewer: Viewer, submission_id: str, body: GradeRequest
    ) -> GradedSubmission:
        locked = await uow.one(q.LOCK_FOR_GRADING, {"id": submission_id}, _Locked)
        if locked is None:
            raise NotFound("Submission not found")
        if not viewer.is_admin and locked.instructor_id != viewer.user_id:
            raise Forbidden("Only the course's instructor or an admin may grade it")
        answers = await uow.all(q.ANSWERS, {"submission": submission_id}, AnswerScore)
        raw, unscored = locked.raw_score, sum(1 for a in answers if a.score is None)
        if body.question_scores:
            points = {a.question_id: a.points for a in answers}
            errors = [
                FieldError(
                    field=f"questionScores[{i}]",
                    message="Not a question of this submission"
                    if s.question_id not in points
                    else f"At most {points[s.question_id]} points",
                )
                for i, s in enumerate(body.question_scores)
                if s.question_id not in points or s.score > points[s.question_id]
            ]
            if errors:
                raise ValidationFailed("The request is invalid", details=errors)
            scores = [
                {"question_id": s.question_id, "score": s.score} for s in body.question_scores
            ]
            await uow.execute(
                q.SCORE_ANSWERS,
                {"submission": submission_id, "scores": _encoder.encode(scores).decode()},
            )
            totals = await uow.one(q.ANSWER_TOTALS, {"submission": submission_id}, _Totals)
            assert totals is not None
            raw, unscored = totals.raw_score, totals.unscored
        late = apply_late_policy(
            raw,
            locked.max_score,
            locked.seconds_late,
            locked.late_deduction_percent,
            locked.late_minimum_percent,
        )
        score, deducted = late.score, late.points_deducted
        if body.score is not None:
            if body.score > locked.max_score:
                raise ValidationFailed(
                    "The request is invalid",
                    details=[FieldError(field="score", message=f"At most {locked.max_score}")],
                )
            score, deducted, unscored = round(body.score, 2), 0.0, 0
        status = "graded" if unscored == 0 else "pending_review"
        await uow.execute(
            q.SET_GRADE,
            {
                "id": submission_id,
                "by": viewer.user_id,
                "from": locked.score,
                "to": score,
                "reason": plain_text(body.reason) if body.reason else None,
                "raw_score": min(raw, locked.max_score),
                "deducted": deducted,
                "status": status,
                "feedback": plain_text(body.feedback) if body.feedback else None,
            },
        )
        await audit.record(
            uow,
            action="grade.change",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="submission",
            target_id=submission_id,
            details={
                "from": locked.score,
                "to": score,
                "status": status,
                "student": locked.user_id,
            },
        )
        if status == "graded":
            assessment = await self._assessments.load(uow, locked.assessment_id)
            await self._submissions.after_grading(uow, locked.user_id, assessment, score)
        return await self.read(uow, submission_id)

    async def read(self, uow: UnitOfWork, submission_id: str) -> GradedSubmission:
        row = await uow.one(q.GET, {"id": submission_id}, GradedSubmission)
        if row is None:
            raise NotFound("Submission not found")
        answers = await uow.all(q.ANSWERS, {"submission": submission_id}, AnswerScore)
        history = await uow.all(q.HISTORY, {"submission": submission_id}, GradeChange)
        return msgspec.structs.replace(row, answers=answers, history=history)
