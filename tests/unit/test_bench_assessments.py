"""The submission scenario's quiz: 20 objective questions and a body answering each of them."""

from benchmarks.assessments import QUIZ_QUESTIONS, answers, quiz_questions


def test_the_quiz_has_twenty_objective_questions() -> None:
    questions = quiz_questions()
    assert len(questions) == QUIZ_QUESTIONS == 20
    assert {q["type"] for q in questions} == {"single_choice", "true_false", "numeric"}


def test_the_body_answers_every_question_once_one_in_five_wrongly() -> None:
    questions = [{**q, "id": f"q{i}"} for i, q in enumerate(quiz_questions())]
    body = answers(questions)
    given = {a["questionId"]: a["value"] for a in body["answers"]}
    assert list(given) == [q["id"] for q in questions]
    right = 0
    for q in questions:
        key = q["value"] if q["type"] == "numeric" else q["correct"]
        right += given[q["id"]] == key
    assert right == 16
