"""Cached course reads: ETags and 304s, and no stale read after a write on any instance."""

from __future__ import annotations

import httpx

from tests.support.accounts import Account, register
from tests.support.courses import add_lesson, published_course
from tests.support.live_server import LiveServer


async def test_a_course_read_has_an_etag_and_answers_304_while_it_is_current(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    student = await register(http)
    path = f"/api/courses/{course['id']}"
    first = await http.get(path, headers=student.auth)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    etag = first.headers["etag"]
    assert first.json()["id"] == course["id"]
    unchanged = await http.get(path, headers={**student.auth, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    await http.put(path, headers=teacher.auth, json={"price": 42})
    changed = await http.get(path, headers={**student.auth, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["price"] == 42
    assert changed.headers["etag"] != etag


async def test_a_write_on_one_instance_is_never_followed_by_a_stale_read_on_another(
    http: httpx.AsyncClient, second_server: LiveServer, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher, lessons=1)
    student = await register(http)
    path = f"/api/courses/{course['id']}"
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        for attempt in range(5):
            # Warm both tiers of the other instance, then write here and read there at once.
            assert (await other.get(path, headers=student.auth)).status_code == 200
            assert (await other.get(path, headers=student.auth)).status_code == 200
            price = 100 + attempt
            written = await http.put(path, headers=teacher.auth, json={"price": price})
            assert written.status_code == 200
            seen = await other.get(path, headers=student.auth)
            assert seen.json()["price"] == price, attempt
        await add_lesson(http, teacher, course["id"])
        assert (await other.get(path, headers=student.auth)).json()["lessonCount"] == 2
        search = {"instructorId": teacher.user_id}
        before = await other.get("/api/courses", headers=student.auth, params=search)
        assert before.json()["items"][0]["totalEnrollments"] == 0
        await http.post(f"{path}/enroll", headers=student.auth)
        after = await other.get("/api/courses", headers=student.auth, params=search)
        assert after.json()["items"][0]["totalEnrollments"] == 1


async def test_searches_are_cached_per_query_and_follow_publishing(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    student = await register(http)
    search = {"instructorId": teacher.user_id}
    empty = await http.get("/api/courses", headers=student.auth, params=search)
    assert empty.json()["total"] == 0
    again = await http.get(
        "/api/courses",
        headers={**student.auth, "If-None-Match": empty.headers["etag"]},
        params=search,
    )
    assert again.status_code == 304
    course, _ = await published_course(http, teacher)
    listed = await http.get("/api/courses", headers=student.auth, params=search)
    assert [c["id"] for c in listed.json()["items"]] == [course["id"]]
