"""Assessment bodies: authoring, questions with and without keys, attempts, submissions,
grading and the gradebook (API.md "Assessments")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from schemas.base import ZERO_FLOOR_SCHEMA, ApiBody, ApiResponse

QuestionType = Literal[
    "single_choice", "multiple_choice", "true_false", "short_answer", "numeric", "essay"
]
Kind = Literal["quiz", "assignment"]
ScoringPolicy = Literal["highest", "latest", "average", "first"]
SubmissionStatus = Literal["graded", "pending_review"]

Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
# Stored as numeric(6, 2): a smaller value would round to 0, a larger one overflow.
Points = Annotated[float, msgspec.Meta(ge=0.01, le=9_999.99)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Option = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Options = Annotated[list[Option], msgspec.Meta(min_length=2, max_length=20)]
Accepted = Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=500)]],
                     msgspec.Meta(min_length=1, max_length=50)]  # fmt: skip
ChoiceIndex = Annotated[int, msgspec.Meta(ge=0, le=19)]
Tolerance = Annotated[float, msgspec.Meta(ge=0, extra_json_schema=ZERO_FLOOR_SCHEMA)]
AnswerValue = bool | int | float | str | list[int] | None


class LatePolicy(ApiBody):
    deduction_percent_per_day: Percent
    minimum_percent: Percent


class QuestionIn(ApiBody):
    type: QuestionType
    prompt: Prompt
    points: Points
    options: Options | None = None
    correct: ChoiceIndex | list[ChoiceIndex] | bool | None = None
    accepted: Accepted | None = None
    value: float | None = None
    tolerance: Tolerance | None = None


class AssessmentCreate(ApiBody):
    title: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
    kind: Kind
    questions: Annotated[list[QuestionIn], msgspec.Meta(min_length=1, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    lesson_id: str | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = 1
    time_limit_minutes: Annotated[int, msgspec.Meta(ge=1, le=10080)] | None = None
    due_at: dt.datetime | None = None
    late_policy: LatePolicy | None = None
    scoring_policy: ScoringPolicy = "highest"
    passing_percent: Percent = 60.0
    published: bool = False


class AssessmentUpdate(ApiBody):
    title: Annotated[str, msgspec.Meta(min_length=3, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    description: Annotated[str, msgspec.Meta(max_length=5000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    questions: (
        Annotated[list[QuestionIn], msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType
    ) = msgspec.UNSET
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    time_limit_minutes: Annotated[int, msgspec.Meta(ge=1, le=10080)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    due_at: dt.datetime | msgspec.UnsetType | None = msgspec.UNSET
    late_policy: LatePolicy | msgspec.UnsetType | None = msgspec.UNSET
    scoring_policy: ScoringPolicy | msgspec.UnsetType = msgspec.UNSET
    passing_percent: Percent | msgspec.UnsetType = msgspec.UNSET
    published: bool | msgspec.UnsetType = msgspec.UNSET


class Question(ApiResponse):
    """A question; the key fields (`correct`, `accepted`, `value`, `tolerance`) only for staff."""

    id: str
    position: int
    type: QuestionType
    prompt: str
    points: float
    options: list[str] | None = None
    correct: int | list[int] | bool | None = None
    accepted: list[str] | None = None
    value: float | None = None
    tolerance: float | None = None


class Assessment(ApiResponse):
    id: str
    course_id: str
    title: str
    kind: Kind
    max_attempts: int | None
    scoring_policy: ScoringPolicy
    passing_percent: float
    published: bool
    max_score: float
    created_at: dt.datetime
    updated_at: dt.datetime
    lesson_id: str | None = None
    description: str | None = None
    time_limit_minutes: int | None = None
    due_at: dt.datetime | None = None
    late_policy: LatePolicy | None = None
    questions: list[Question] = msgspec.field(default_factory=list)


class AssessmentList(ApiResponse):
    items: list[Assessment]


class AttemptStarted(ApiResponse):
    id: str
    number: int
    started_at: dt.datetime
    deadline: dt.datetime | None = None


class Answer(ApiBody):
    question_id: str
    value: AnswerValue = None


class SubmissionCreate(ApiBody):
    answers: Annotated[list[Answer], msgspec.Meta(max_length=200)]
    attempt_id: str | None = None


class AnswerScore(ApiResponse):
    question_id: str
    value: AnswerValue
    points: float
    score: float | None = None


class Submission(ApiResponse):
    id: str
    assessment_id: str
    user_id: str
    attempt: int
    submitted_at: dt.datetime
    late: bool
    seconds_late: int
    points_deducted: float
    score: float
    max_score: float
    status: SubmissionStatus
    feedback: str | None = None
    answers: list[AnswerScore] = msgspec.field(default_factory=list)


class SubmissionPage(ApiResponse):
    items: list[Submission]
    page: int
    limit: int
    total: int


class QuestionScore(ApiBody):
    question_id: str
    score: Annotated[float, msgspec.Meta(ge=0, le=10_000)]


class GradeRequest(ApiBody):
    score: (
        Annotated[float, msgspec.Meta(ge=0, le=1_000_000, extra_json_schema=ZERO_FLOOR_SCHEMA)]
        | None
    ) = None
    feedback: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    question_scores: Annotated[list[QuestionScore], msgspec.Meta(max_length=200)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class GradeChange(ApiResponse):
    changed_by: str | None
    changed_at: dt.datetime
    from_score: float | None
    to_score: float
    reason: str | None = None


class GradedSubmission(Submission, kw_only=True):
    history: list[GradeChange] = msgspec.field(default_factory=list)


class GradebookCell(ApiResponse):
    assessment_id: str
    score: float | None
    max_score: float
    attempts: int
    pending_review: bool


class GradebookRow(ApiResponse):
    user_id: str
    name: str
    email: str
    status: str
    progress: float
    course_grade: float | None
    scores: list[GradebookCell]


class GradebookColumn(ApiResponse):
    id: str
    title: str
    max_score: float
    scoring_policy: ScoringPolicy


class Gradebook(ApiResponse):
    assessments: list[GradebookColumn]
    items: list[GradebookRow]
    page: int
    limit: int
    total: int
