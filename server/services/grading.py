"""Grading rules, free of I/O: checking questions and answers, scoring objective questions,
the late policy and the scoring policies.

- `single_choice`: the chosen index is the key's. `multiple_choice`: the chosen set equals the
  key's set (order and repeats do not matter; no partial credit). `true_false`: the boolean.
- `short_answer`: an accepted string, compared case-insensitively with runs of whitespace
  taken as one space and the ends trimmed (Unicode case folding, NFKC).
- `numeric`: within `tolerance` of `value` (inclusive).
- `essay`: no automatic score; the submission waits for a teacher.
- Late policy (Canvas's): past `dueAt`, each started day late deducts `deductionPercentPerDay`
  of the maximum score, and the deduction never takes a score below `minimumPercent` of the
  maximum (a score already below that floor keeps what it earned).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.assessments import AnswerValue, QuestionIn, QuestionType
from schemas.problem import FieldError

AUTO_GRADED: frozenset[QuestionType] = frozenset(
    {"single_choice", "multiple_choice", "true_false", "short_answer", "numeric"}
)
_DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class GradableQuestion:
    id: str
    type: QuestionType
    points: float
    options: Sequence[str] | None
    key: dict[str, Any] | None


def normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def question_errors(index: int, question: QuestionIn) -> list[FieldError]:
    """What is wrong with a question for its type (every problem, not just the first)."""
    path = f"questions[{index}]"
    errors: list[FieldError] = []

    def error(field: str, message: str) -> None:
        errors.append(FieldError(field=f"{path}.{field}", message=message))

    kind = question.type
    if kind in ("single_choice", "multiple_choice"):
        if question.options is None:
            error("options", "Required for choice questions")
        count = len(question.options or [])
        if kind == "single_choice":
            if not isinstance(question.correct, int) or isinstance(question.correct, bool):
                error("correct", "The index of the right option")
            elif question.correct >= count:
                error("correct", "Not an index of the options")
        elif not isinstance(question.correct, list) or not question.correct:
            error("correct", "The indexes of the right options")
        elif any(i >= count for i in question.correct):
            error("correct", "Not an index of the options")
    elif question.options is not None:
        error("options", "Only choice questions have options")
    if kind == "true_false" and not isinstance(question.correct, bool):
        error("correct", "true or false")
    if kind == "short_answer" and not question.accepted:
        error("accepted", "At least one accepted answer")
    if kind == "numeric" and question.value is None:
        error("value", "The right value")
    if kind in ("short_answer", "numeric", "essay") and question.correct is not None:
        error("correct", f"Not used by {kind} questions")
    return errors


def key_of(question: QuestionIn) -> dict[str, Any] | None:
    """The stored answer key of a question, or None for an essay."""
    match question.type:
        case "single_choice" | "true_false":
            return {"correct": question.correct}
        case "multiple_choice":
            return {"correct": sorted(set(question.correct))}  # type: ignore[arg-type]
        case "short_answer":
            return {"accepted": list(question.accepted or [])}
        case "numeric":
            return {"value": question.value, "tolerance": question.tolerance or 0.0}
        case _:
            return None


def answer_error(question: GradableQuestion, value: AnswerValue) -> str | None:
    """Why `value` cannot be an answer to `question`, or None when it can (None = blank)."""
    if value is None:
        return None
    match question.type:
        case "single_choice":
            is_index = isinstance(value, int) and not isinstance(value, bool)
            if is_index and 0 <= value < len(question.options or ()):  # type: ignore[operator]
                return None
            return "An option index"
        case "multiple_choice":
            count = len(question.options or ())
            ok = isinstance(value, list) and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in value
            )
            return None if ok else "A list of option indexes"
        case "true_false":
            return None if isinstance(value, bool) else "true or false"
        case "numeric":
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return None if is_number and math.isfinite(value) else "A number"  # type: ignore[arg-type]
        case _:
            if not isinstance(value, str):
                return "Text"
            return None if len(value) <= 20_000 else "At most 20000 characters"


def score_answer(question: GradableQuestion, value: AnswerValue) -> float | None:
    """Points earned for an objective question; None for an essay (graded by hand)."""
    if question.type not in AUTO_GRADED:
        return None
    key = question.key or {}
    if value is None:
        return 0.0
    right = False
    match question.type:
        case "single_choice" | "true_false":
            right = value == key.get("correct") and type(value) is type(key.get("correct"))
        case "multiple_choice":
            right = isinstance(value, list) and set(value) == set(key.get("correct", ()))
        case "short_answer":
            accepted = {normalise_text(a) for a in key.get("accepted", ())}
            right = isinstance(value, str) and normalise_text(value) in accepted
        case "numeric":
            target, tolerance = float(key["value"]), float(key.get("tolerance") or 0.0)
            right = isinstance(value, int | float) and abs(float(value) - target) <= tolerance
    return question.points if right else 0.0


@dataclass(frozen=True, slots=True)
class Lateness:
    late: bool
    seconds_late: int
    points_deducted: float
    score: float


def apply_late_policy(
    raw_score: float,
    max_score: float,
    seconds_late: float,
    deduction_percent_per_day: float | None,
    minimum_percent: float | None,
) -> Lateness:
    """The score after the late policy (see the module docstring)."""
    late = seconds_late > 0
    seconds = max(0, math.ceil(seconds_late))
    if not late or deduction_percent_per_day is None or minimum_percent is None:
        return Lateness(late, seconds, 0.0, raw_score)
    days = math.ceil(seconds_late / _DAY_SECONDS)
    deduction = max_score * min(100.0, days * deduction_percent_per_day) / 100
    floor = max_score * minimum_percent / 100
    score = round(max(raw_score - deduction, min(raw_score, floor)), 2)
    return Lateness(True, seconds, round(raw_score - score, 2), score)


def effective_score(scores_by_attempt: Sequence[float], policy: str) -> float | None:
    """The score that counts, by the assessment's scoring policy (attempts in order)."""
    if not scores_by_attempt:
        return None
    match policy:
        case "highest":
            return max(scores_by_attempt)
        case "latest":
            return scores_by_attempt[-1]
        case "first":
            return scores_by_attempt[0]
        case _:
            return round(sum(scores_by_attempt) / len(scores_by_attempt), 2)
