"""Assessments end to end: authoring, keys kept from students, attempts and their limits,
auto-grading, teacher grading with history, scoring policies, lessons and the gradebook."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import psycopg

from tests.support.accounts import Account, register
from tests.support.courses import make_teacher, published_course

QUESTIONS: list[dict[str, Any]] = [
    {"type": "single_choice", "prompt": "2 + 2?", "points": 2, "options": ["3", "4"], "correct": 1},
    {"type": "multiple_choice", "prompt": "Primes?", "points": 2, "options": ["2", "4", "5"],
     "correct": [0, 2]},
    {"type": "true_false", "prompt": "The sky is green.", "points": 1, "correct": False},
    {"type": "short_answer", "prompt": "Capital of France?", "points": 2, "accepted": ["Paris"]},
    {"type": "numeric", "prompt": "Pi to two places?", "points": 3, "value": 3.14,
     "tolerance": 0.005},
]  # fmt: skip
RIGHT = [1, [2, 0], False, "  pAris ", 3.141]


async def _assessment(
    http: httpx.AsyncClient, teacher: Account, course_id: str, **overrides: Any
) -> dict[str, Any]:
    body = {"title": "Week 1 quiz", "kind": "quiz", "questions": QUESTIONS, "published": True}
    body.update(overrides)
    response = await http.post(
        f"/api/courses/{course_id}/assessments", headers=teacher.auth, json=body
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def _enrolled_student(http: httpx.AsyncClient, course_id: str) -> Account:
    student = await register(http)
    assert (
        await http.post(f"/api/courses/{course_id}/enroll", headers=student.auth)
    ).status_code == 201
    return student


def _answers(assessment: dict[str, Any], values: list[Any]) -> list[dict[str, Any]]:
    return [
        {"questionId": q["id"], "value": v}
        for q, v in zip(assessment["questions"], values, strict=True)
    ]


async def test_students_never_see_keys_and_objective_answers_are_graded_at_once(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"])
    assert made["maxScore"] == 10
    assert made["questions"][0]["correct"] == 1
    student = await _enrolled_student(http, course["id"])
    seen = (await http.get(f"/api/assessments/{made['id']}", headers=student.auth)).json()
    for question in seen["questions"]:
        assert not {"correct", "accepted", "value", "tolerance"} & question.keys()
    listed = await http.get(f"/api/courses/{course['id']}/assessments", headers=student.auth)
    assert "correct" not in listed.json()["items"][0]["questions"][0]
    submitted = await http.post(
        f"/api/assessments/{made['id']}/submissions",
        headers=student.auth,
        json={"answers": _answers(made, RIGHT)},
    )
    assert submitted.status_code == 201, submitted.text
    body = submitted.json()
    assert body["status"] == "graded"
    assert body["score"] == 10
    assert body["attempt"] == 1
    assert body["late"] is False
    achievements = (await http.get("/api/users/achievements", headers=student.auth)).json()
    assert "Flawless" in {a["title"] for a in achievements["items"]}


async def test_wrong_answers_score_zero_and_bad_shapes_are_400(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"], maxAttempts=None)
    student = await _enrolled_student(http, course["id"])
    path = f"/api/assessments/{made['id']}/submissions"
    wrong = await http.post(
        path, headers=student.auth, json={"answers": _answers(made, [0, [0], True, "Lyon", 3.2])}
    )
    assert wrong.json()["score"] == 0
    bad = await http.post(
        path,
        headers=student.auth,
        json={"answers": _answers(made, ["one", 1, "yes", 5, "pi"])},
    )
    assert bad.status_code == 400
    assert {d["field"] for d in bad.json()["details"]} == {f"answers[{i}].value" for i in range(5)}
    blank = await http.post(path, headers=student.auth, json={"answers": []})
    assert blank.json()["score"] == 0


async def test_invalid_questions_are_reported_together(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    response = await http.post(
        f"/api/courses/{course['id']}/assessments",
        headers=teacher.auth,
        json={
            "title": "Broken",
            "kind": "quiz",
            "questions": [
                {"type": "single_choice", "prompt": "?", "points": 1, "options": ["a", "b"],
                 "correct": 5},
                {"type": "short_answer", "prompt": "?", "points": 1},
                {"type": "true_false", "prompt": "?", "points": 1, "correct": 1},
            ],
        },
    )  # fmt: skip
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {
        "questions[0].correct",
        "questions[1].accepted",
        "questions[2].correct",
    }


async def test_concurrent_submissions_never_exceed_max_attempts(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"], maxAttempts=2)
    student = await _enrolled_student(http, course["id"])
    path = f"/api/assessments/{made['id']}/submissions"
    answers = await asyncio.gather(
        *(
            http.post(path, headers=student.auth, json={"answers": _answers(made, RIGHT)})
            for _ in range(8)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 2
    assert statuses.count(409) == 6
    assert sorted(a.json()["attempt"] for a in answers if a.status_code == 201) == [1, 2]
    refused = await http.post(f"/api/assessments/{made['id']}/attempts", headers=student.auth)
    assert refused.status_code == 409


async def test_essays_wait_for_a_teacher_whose_grades_are_kept_in_history(
    http: httpx.AsyncClient, admin: Account, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(
        http,
        teacher,
        course["id"],
        kind="assignment",
        questions=[
            {"type": "essay", "prompt": "Explain recursion.", "points": 8},
            {"type": "true_false", "prompt": "Water is wet.", "points": 2, "correct": True},
        ],
    )
    student = await _enrolled_student(http, course["id"])
    submitted = (
        await http.post(
            f"/api/assessments/{made['id']}/submissions",
            headers=student.auth,
            json={"answers": _answers(made, ["It calls itself.", True])},
        )
    ).json()
    assert submitted["status"] == "pending_review"
    assert submitted["score"] == 2
    grade_path = f"/api/submissions/{submitted['id']}/grade"
    essay = made["questions"][0]["id"]
    other = await make_teacher(http, admin)
    forbidden = await http.post(grade_path, headers=other.auth, json={"score": 1})
    assert forbidden.status_code == 403
    too_many = await http.post(
        grade_path,
        headers=teacher.auth,
        json={"questionScores": [{"questionId": essay, "score": 9}]},
    )
    assert too_many.status_code == 400
    graded = await http.post(
        grade_path,
        headers=teacher.auth,
        json={"questionScores": [{"questionId": essay, "score": 6}], "feedback": "Good"},
    )
    assert graded.status_code == 200, graded.text
    assert graded.json()["status"] == "graded"
    assert graded.json()["score"] == 8
    regraded = await http.post(
        grade_path, headers=teacher.auth, json={"score": 9.5, "reason": "Appeal"}
    )
    history = regraded.json()["history"]
    assert [(h["fromScore"], h["toScore"]) for h in history] == [(2, 8), (8, 9.5)]
    assert history[1]["reason"] == "Appeal"
    assert history[0]["changedBy"] == teacher.user_id
    assert (
        await http.post(grade_path, headers=student.auth, json={"score": 10})
    ).status_code == 403


async def test_questions_cannot_change_once_submitted(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"])
    path = f"/api/assessments/{made['id']}"
    renamed = await http.put(path, headers=teacher.auth, json={"questions": QUESTIONS[:2]})
    assert renamed.status_code == 200
    assert renamed.json()["maxScore"] == 4
    made = renamed.json()
    student = await _enrolled_student(http, course["id"])
    await http.post(
        f"{path}/submissions", headers=student.auth, json={"answers": _answers(made, RIGHT[:2])}
    )
    refused = await http.put(path, headers=teacher.auth, json={"questions": QUESTIONS})
    assert refused.status_code == 409
    retitled = await http.put(path, headers=teacher.auth, json={"title": "Renamed quiz"})
    assert retitled.status_code == 200
    assert (await http.delete(path, headers=teacher.auth)).status_code == 409


async def test_a_timed_attempt_refuses_answers_past_its_deadline_and_grace(
    http: httpx.AsyncClient, teacher: Account, database_url: str
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"], timeLimitMinutes=5, maxAttempts=3)
    student = await _enrolled_student(http, course["id"])
    started = await http.post(f"/api/assessments/{made['id']}/attempts", headers=student.auth)
    assert started.status_code == 201
    attempt = started.json()
    deadline = dt.datetime.fromisoformat(attempt["deadline"])
    assert dt.timedelta(minutes=4) < deadline - dt.datetime.fromisoformat(attempt["startedAt"])
    again = await http.post(f"/api/assessments/{made['id']}/attempts", headers=student.auth)
    assert again.status_code == 200
    assert again.json()["id"] == attempt["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE attempts SET deadline = now() - interval '31 seconds' WHERE id = %s",
            (attempt["id"],),
        )
    late = await http.post(
        f"/api/assessments/{made['id']}/submissions",
        headers=student.auth,
        json={"attemptId": attempt["id"], "answers": _answers(made, RIGHT)},
    )
    assert late.status_code == 409


async def test_the_late_policy_and_the_scoring_policy_decide_the_gradebook(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1, hours=1)).isoformat()
    late_quiz = await _assessment(
        http,
        teacher,
        course["id"],
        title="Late quiz",
        dueAt=due,
        latePolicy={"deductionPercentPerDay": 10, "minimumPercent": 50},
    )
    average_quiz = await _assessment(
        http, teacher, course["id"], title="Average quiz", scoringPolicy="average", maxAttempts=2
    )
    student = await _enrolled_student(http, course["id"])
    late = (
        await http.post(
            f"/api/assessments/{late_quiz['id']}/submissions",
            headers=student.auth,
            json={"answers": _answers(late_quiz, RIGHT)},
        )
    ).json()
    # Two started days late at 10 % of 10 points a day: 10 - 2 = 8.
    assert late["late"] is True
    assert late["pointsDeducted"] == 2
    assert late["score"] == 8
    for values in ([0, [0], True, "x", 0], RIGHT):
        await http.post(
            f"/api/assessments/{average_quiz['id']}/submissions",
            headers=student.auth,
            json={"answers": _answers(average_quiz, values)},
        )
    book = await http.get(f"/api/courses/{course['id']}/gradebook", headers=teacher.auth)
    assert book.status_code == 200, book.text
    row = next(r for r in book.json()["items"] if r["userId"] == student.user_id)
    cells = {c["assessmentId"]: c for c in row["scores"]}
    assert cells[late_quiz["id"]]["score"] == 8
    assert cells[average_quiz["id"]]["score"] == 5
    assert cells[average_quiz["id"]]["attempts"] == 2
    assert row["courseGrade"] == 65
    assert (
        await http.get(f"/api/courses/{course['id']}/gradebook", headers=student.auth)
    ).status_code == 403


async def test_passing_a_tied_assessment_completes_its_lesson(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, lessons = await published_course(http, teacher, lessons=2)
    made = await _assessment(
        http, teacher, course["id"], lessonId=lessons[1]["id"], passingPercent=70, maxAttempts=None
    )
    student = await _enrolled_student(http, course["id"])
    base = f"/api/courses/{course['id']}"
    gated = await http.post(f"{base}/lessons/{lessons[1]['id']}/complete", headers=student.auth)
    assert gated.status_code == 409
    await http.post(f"{base}/lessons/{lessons[0]['id']}/complete", headers=student.auth)
    failing = [0, [0], True, "x", 0]
    await http.post(
        f"/api/assessments/{made['id']}/submissions",
        headers=student.auth,
        json={"answers": _answers(made, failing)},
    )
    progress = (await http.get("/api/users/progress", headers=student.auth)).json()["items"]
    assert next(p for p in progress if p["courseId"] == course["id"])["progress"] == 50
    await http.post(
        f"/api/assessments/{made['id']}/submissions",
        headers=student.auth,
        json={"answers": _answers(made, RIGHT)},
    )
    progress = (await http.get("/api/users/progress", headers=student.auth)).json()["items"]
    done = next(p for p in progress if p["courseId"] == course["id"])
    assert done["progress"] == 100
    assert done["status"] == "completed"


async def test_only_enrolled_students_take_published_assessments(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    draft = await _assessment(http, teacher, course["id"], published=False)
    student = await _enrolled_student(http, course["id"])
    hidden = await http.get(f"/api/assessments/{draft['id']}", headers=student.auth)
    assert hidden.status_code == 404
    outsider = await register(http)
    published = await _assessment(http, teacher, course["id"])
    refused = await http.post(
        f"/api/assessments/{published['id']}/submissions",
        headers=outsider.auth,
        json={"answers": []},
    )
    assert refused.status_code == 404
    own = await http.get(f"/api/assessments/{published['id']}/submissions", headers=student.auth)
    assert own.json()["total"] == 0


async def test_the_gradebook_streams_as_csv_for_its_staff(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    made = await _assessment(http, teacher, course["id"], title="=SUM(A1)")
    student = await _enrolled_student(http, course["id"])
    await http.post(
        f"/api/assessments/{made['id']}/submissions",
        headers=student.auth,
        json={"answers": _answers(made, RIGHT)},
    )
    path = f"/api/courses/{course['id']}/gradebook"
    csv_accept = {"Accept": "text/csv"}
    refused = await http.get(path, headers={**student.auth, **csv_accept})
    assert refused.status_code == 403
    answer = await http.get(path, headers={**teacher.auth, **csv_accept})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.strip().splitlines()
    assert "'=SUM(A1)" in lines[0]
    assert len(lines) == 2
    assert student.email in lines[1]
    assert lines[1].rstrip().endswith(",10.0,100.0")
