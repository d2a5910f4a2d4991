"""The grading rules as properties: scores in range, choice order irrelevant, short-answer
normalisation, the late policy's arithmetic and the scoring policies."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from schemas.assessments import QuestionIn
from server.services.grading import (
    GradableQuestion,
    answer_error,
    apply_late_policy,
    effective_score,
    key_of,
    question_errors,
    score_answer,
)

points = st.floats(min_value=0.01, max_value=100, allow_nan=False).map(lambda p: round(p, 2))


def _question(
    kind: str, key: dict[str, object] | None, options: int = 4, pts: float = 5.0
) -> GradableQuestion:
    return GradableQuestion(
        id="q",
        type=kind,  # type: ignore[arg-type]
        points=pts,
        options=[f"option {i}" for i in range(options)] if "choice" in kind else None,
        key=key,
    )


@given(pts=points, chosen=st.integers(0, 3), right=st.integers(0, 3))
def test_single_choice_scores_all_or_nothing(pts: float, chosen: int, right: int) -> None:
    score = score_answer(_question("single_choice", {"correct": right}, pts=pts), chosen)
    assert score == (pts if chosen == right else 0.0)


@given(right=st.sets(st.integers(0, 5), min_size=1), data=st.data())
def test_multiple_choice_ignores_order_and_repeats(right: set[int], data: st.DataObject) -> None:
    question = _question("multiple_choice", {"correct": sorted(right)}, options=6)
    answer = data.draw(st.permutations(sorted(right)))
    repeated = [*answer, *answer[:1]]
    assert score_answer(question, list(answer)) == question.points
    assert score_answer(question, repeated) == question.points
    other = data.draw(st.sets(st.integers(0, 5)).filter(lambda s: s != right))
    assert score_answer(question, sorted(other)) == 0.0


@given(
    word=st.text(alphabet="abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=12),
    left=st.text(alphabet=" \t\n", max_size=3),
    right=st.text(alphabet=" \t\n", max_size=3),
)
def test_short_answers_ignore_case_and_surrounding_or_repeated_whitespace(
    word: str, left: str, right: str
) -> None:
    question = _question("short_answer", {"accepted": [f"{word} answer"]})
    assert score_answer(question, f"{left}{word.upper()}  \t answer{right}") == question.points
    assert score_answer(question, f"{word}answer") == 0.0


@given(
    value=st.floats(-1e6, 1e6, allow_nan=False),
    tolerance=st.floats(0, 10, allow_nan=False),
    offset=st.floats(-20, 20, allow_nan=False),
)
def test_numeric_answers_within_the_tolerance_score(
    value: float, tolerance: float, offset: float
) -> None:
    question = _question("numeric", {"value": value, "tolerance": tolerance})
    score = score_answer(question, value + offset)
    inside = abs((value + offset) - value) <= tolerance
    assert score == (question.points if inside else 0.0)


@given(kind=st.sampled_from(["single_choice", "multiple_choice", "true_false", "short_answer",
                              "numeric"]), answer=st.one_of(st.none(), st.booleans(),
                              st.integers(-5, 5), st.text(max_size=5),
                              st.lists(st.integers(0, 3), max_size=4)))  # fmt: skip
def test_a_score_is_always_zero_or_the_points(kind: str, answer: object) -> None:
    keys: dict[str, dict[str, object]] = {
        "single_choice": {"correct": 1},
        "multiple_choice": {"correct": [0, 1]},
        "true_false": {"correct": True},
        "short_answer": {"accepted": ["x"]},
        "numeric": {"value": 1.0, "tolerance": 0.5},
    }
    question = _question(kind, keys[kind])
    if answer_error(question, answer) is None:  # type: ignore[arg-type]
        assert score_answer(question, answer) in (0.0, question.points)  # type: ignore[arg-type]


def test_essays_have_no_automatic_score() -> None:
    assert score_answer(_question("essay", None), "An essay.") is None


def test_answers_of_the_wrong_shape_are_named() -> None:
    choice = _question("single_choice", {"correct": 0})
    assert answer_error(choice, 9) == "An option index"
    assert answer_error(choice, True) == "An option index"
    assert answer_error(_question("true_false", {"correct": True}), 1) == "true or false"
    assert answer_error(_question("numeric", {"value": 1}), math.inf) == "A number"
    assert answer_error(choice, None) is None


@given(
    raw=st.floats(0, 100, allow_nan=False),
    days=st.integers(0, 30),
    per_day=st.floats(0, 100, allow_nan=False),
    minimum=st.floats(0, 100, allow_nan=False),
)
def test_the_late_policy_deducts_per_started_day_down_to_its_floor(
    raw: float, days: int, per_day: float, minimum: float
) -> None:
    max_score = 100.0
    seconds = days * 86_400 - (3600 if days else 0)
    late = apply_late_policy(raw, max_score, seconds, per_day, minimum)
    assert late.late == (days > 0)
    assert 0 <= late.score <= raw + 0.005
    if days:
        expected = max(raw - max_score * min(100.0, days * per_day) / 100, min(raw, minimum))
        assert math.isclose(late.score, round(expected, 2), abs_tol=0.006)
        assert math.isclose(late.points_deducted, raw - late.score, abs_tol=0.011)
    else:
        assert late.score == raw


def test_no_late_policy_keeps_the_score_but_records_the_lateness() -> None:
    late = apply_late_policy(7.0, 10.0, 90.0, None, None)
    assert (late.late, late.seconds_late, late.score, late.points_deducted) == (True, 90, 7.0, 0)


@given(scores=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=6))
def test_scoring_policies(scores: list[float]) -> None:
    assert effective_score(scores, "highest") == max(scores)
    assert effective_score(scores, "latest") == scores[-1]
    assert effective_score(scores, "first") == scores[0]
    average = effective_score(scores, "average")
    assert average is not None
    assert math.isclose(average, round(sum(scores) / len(scores), 2))
    assert effective_score([], "highest") is None


def test_question_checks_and_keys() -> None:
    choice = QuestionIn(
        type="multiple_choice", prompt="?", points=1, options=["a", "b"], correct=[1, 1, 0]
    )
    assert question_errors(0, choice) == []
    assert key_of(choice) == {"correct": [0, 1]}
    essay = QuestionIn(type="essay", prompt="?", points=1, correct=True)
    assert [e.field for e in question_errors(3, essay)] == ["questions[3].correct"]
    assert key_of(essay) is None
