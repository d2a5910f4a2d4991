"""Tests of request mixes: placeholders filled per session, and the student's-day weights."""

import random

import pytest

from benchmarks.opensim.mix import MixEntry, MixPicker, SessionCredentials, fill_path
from benchmarks.scenarios import RouteConfig, student_day_mix


def test_fill_path_takes_queues_in_order_and_keeps_the_last() -> None:
    creds = SessionCredentials(user_id="u1", queues={"todo": ["a", "b"]}, pools={"c": ("x",)})
    rng = random.Random(1)
    assert fill_path("/users/{user_id}", creds, rng) == "/users/u1"
    assert fill_path("/t/{todo}/done", creds, rng) == "/t/a/done"
    assert fill_path("/t/{todo}/done", creds, rng) == "/t/b/done"
    assert fill_path("/t/{todo}/done", creds, rng) == "/t/b/done"
    assert fill_path("/c/{c}?{c}", creds, rng) == "/c/x?x"
    assert fill_path("/plain", creds, rng) == "/plain"


def test_fill_path_draws_pools_uniformly() -> None:
    creds = SessionCredentials(pools={"c": ("a", "b", "c", "d")})
    rng = random.Random(5)
    drawn = [fill_path("{c}", creds, rng) for _ in range(4000)]
    assert {d: drawn.count(d) for d in "abcd"} == pytest.approx(
        dict.fromkeys("abcd", 1000), rel=0.1
    )


def test_fill_path_without_a_value_raises() -> None:
    with pytest.raises(KeyError, match="course"):
        fill_path("/api/courses/{course}", SessionCredentials(), random.Random(1))
    assert SessionCredentials(queues={"todo": []}, pools={"c": ()}).provides() == {
        "user_id",
        "c",
    }


def test_placeholders() -> None:
    assert MixEntry(1, "GET", "/a/{x}/b/{y_z}").placeholders == {"x", "y_z"}
    assert MixEntry(1, "GET", "/a").placeholders == frozenset()


def test_student_day_mix_is_half_identity_half_courses() -> None:
    mix = student_day_mix(RouteConfig())
    total = sum(e.weight for e in mix)
    courses = sum(e.weight for e in mix if "/api/courses" in e.path)
    progress = sum(e.weight for e in mix if e.path == "/api/users/progress")
    identity = total - courses - progress
    assert 0.45 <= identity / total <= 0.55
    by_name = {e.label: e.weight for e in mix}
    assert by_name["complete a lesson"] > by_name["enroll"] > 0
    assert by_name["read a course"] >= by_name["read lessons"]
    assert {"refresh", "GET /api/auth/me", "search courses", "browse courses"} <= set(by_name)
    assert sum(1 for e in mix if e.kind == "refresh") == 1
    MixPicker(mix)  # valid weights


def test_student_day_placeholders_are_the_ones_sessions_provide() -> None:
    needed = set().union(*(e.placeholders for e in student_day_mix(RouteConfig())))
    assert needed == {"browse", "term", "course", "enrolled", "todo", "enroll"}
