"""`Idempotency-Key` on the course domain's creating POSTs, across two live instances."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.support.accounts import Account, register
from tests.support.courses import course_body, published_course
from tests.support.live_server import LiveServer


async def test_a_retried_course_creation_makes_one_course_on_any_instance(
    http: httpx.AsyncClient, second_server: LiveServer, teacher: Account
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = course_body()
    first = await http.post("/api/courses", headers={**teacher.auth, **key}, json=body)
    assert first.status_code == 201
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=10) as other:
        replay = await other.post("/api/courses", headers={**teacher.auth, **key}, json=body)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    mine = await http.get(
        "/api/courses", headers=teacher.auth, params={"instructorId": teacher.user_id}
    )
    assert mine.json()["total"] == 1
    other_body = await http.post(
        "/api/courses", headers={**teacher.auth, **key}, json=course_body(title="Another title")
    )
    assert other_body.status_code == 422


async def test_fifty_concurrent_keyed_enrollments_make_one(
    http: httpx.AsyncClient, teacher: Account
) -> None:
    course, _ = await published_course(http, teacher)
    student = await register(http)
    key = {"Idempotency-Key": "enroll-" + uuid.uuid4().hex}
    path = f"/api/courses/{course['id']}/enroll"
    answers = await asyncio.gather(
        *(http.post(path, headers={**student.auth, **key}) for _ in range(50))
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in created}) == 1
    assert sum(1 for a in created if "idempotent-replayed" not in a.headers) == 1
    seen = (await http.get(f"/api/courses/{course['id']}", headers=student.auth)).json()
    assert seen["totalEnrollments"] == 1
    later = await http.post(path, headers={**student.auth, **key})
    assert later.status_code == 201
    assert later.headers["idempotent-replayed"] == "true"


async def test_keys_are_scoped_to_their_caller(http: httpx.AsyncClient, teacher: Account) -> None:
    course, _ = await published_course(http, teacher)
    key = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
    path = f"/api/courses/{course['id']}/enroll"
    one, two = await register(http), await register(http)
    first = await http.post(path, headers={**one.auth, **key})
    second = await http.post(path, headers={**two.auth, **key})
    assert first.status_code == second.status_code == 201
    assert first.json()["userId"] != second.json()["userId"]
    assert "idempotent-replayed" not in second.headers
