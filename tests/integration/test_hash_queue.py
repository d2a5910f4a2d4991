"""Password hashing past its queue bound: refused at once with 503 and Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.support.accounts import GOOD_PASSWORD, unique_email
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def narrow_server(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(
        {"DATABASE_URL": database_url, "HASH_CONCURRENCY": "1", "HASH_QUEUE_MAX": "2"}
    ).start()
    yield server
    server.stop()


async def test_logins_beyond_the_queue_bound_get_fast_503s(narrow_server: LiveServer) -> None:
    answers: list[httpx.Response] = []

    async def log_in(http: httpx.AsyncClient) -> None:
        body = {"email": unique_email("nobody"), "password": GOOD_PASSWORD}
        answers.append(await http.post("/api/auth/login", json=body))

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=narrow_server.base_url, timeout=15, limits=limits
    ) as http:
        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(log_in, http)
        refused = [r for r in answers if r.status_code == 503]
        checked = [r for r in answers if r.status_code == 401]
        assert len(refused) + len(checked) == 60
        assert refused, "no login was refused"
        assert checked, "no login was checked"
        for response in refused:
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
        assert min(r.elapsed.total_seconds() for r in refused) < 1.0
        # Once the burst is over, logins are checked again.
        await log_in(http)
        assert answers[-1].status_code == 401
