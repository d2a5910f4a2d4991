"""The gradebook costs the same few statements for any page size: no query per student."""

from __future__ import annotations

import httpx

from actors.bus import SyncBus
from actors.cache import CacheActor
from server.db.pool import create_pool
from server.db.unit import Database
from server.security.permissions import Role
from server.services.courses import Courses
from server.services.gradebook import Gradebooks
from server.services.viewer import Viewer
from server.settings import load_settings
from tests.support.accounts import Account, register
from tests.support.courses import published_course


async def test_a_page_of_any_size_costs_the_same_statements(
    http: httpx.AsyncClient, teacher: Account, database_url: str
) -> None:
    course, _ = await published_course(http, teacher)
    for title in ("First", "Second", "Third"):
        made = await http.post(
            f"/api/courses/{course['id']}/assessments",
            headers=teacher.auth,
            json={
                "title": f"{title} quiz",
                "kind": "quiz",
                "published": True,
                "questions": [
                    {"type": "true_false", "prompt": "Yes?", "points": 1, "correct": True}
                ],
            },
        )
        assert made.status_code == 201
    for _ in range(12):
        student = await register(http)
        await http.post(f"/api/courses/{course['id']}/enroll", headers=student.auth)
    settings = load_settings({"DATABASE_URL": database_url, "DB_POOL_MIN": "1"})
    async with create_pool(settings, database_url) as pool:
        database = Database(pool)
        cache = CacheActor(redis=None, bus=SyncBus(None, instance_id="t"), instance_id="t")
        gradebooks = Gradebooks(Courses(database, cache))
        viewer = Viewer(teacher.user_id, Role.TEACHER)
        counts = []
        for limit in (2, 12):
            async with database.unit() as uow:
                page = await gradebooks.page(uow, viewer, course["id"], page=1, limit=limit)
                counts.append(list(uow.statements))
            assert len(page.items) == limit
            assert all(len(row.scores) == 3 for row in page.items)
    assert counts[0] == counts[1]
    assert len(counts[0]) <= 4
