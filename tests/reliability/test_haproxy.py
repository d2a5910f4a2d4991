"""Two instances behind haproxy with `ops/haproxy.cfg`: what a client relies on holds whichever
instance answers.

The balancer runs the shipped configuration with its DNS `server-template` swapped for the two
test instances, and an `X-Served-By` header added so each answer names its instance. Each
test checks that both instances answered the requests it judges.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import GOOD_PASSWORD, create_user_cli, login, register, unique_email
from tests.support.courses import course_body, make_teacher, published_course
from tests.support.live_server import LiveServer
from tests.support.services import free_port
from tests.support.waiting import eventually, eventually_sync

CONFIG = Path(__file__).resolve().parents[2] / "ops" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
AUTH_LIMIT = 5
SERVED_BY = "x-served-by"


@dataclass(frozen=True)
class Balanced:
    url: str
    servers: tuple[LiveServer, ...]
    admin_email: str


def _binds() -> dict[str, str]:
    return {
        "SEVENP_LB_BIND": f"127.0.0.1:{free_port()}",
        "SEVENP_LB_STATS_BIND": f"127.0.0.1:{free_port()}",
    }


def _config_for(servers: tuple[LiveServer, ...]) -> str:
    shipped = CONFIG.read_text()
    template = re.compile(r"^\s*server-template .*$", re.MULTILINE)
    assert template.search(shipped), "ops/haproxy.cfg no longer finds instances by server-template"
    lines = [f"    server app{i} 127.0.0.1:{s.port} check" for i, s in enumerate(servers, 1)]
    lines.append(f"    http-response set-header {SERVED_BY} %[srv_name]")
    return template.sub("\n".join(lines), shipped)


@needs_haproxy
def test_the_shipped_configuration_is_valid() -> None:
    assert HAPROXY is not None
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(CONFIG)],
        env={**os.environ, **_binds()}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def balanced(database_url: str, redis_url: str, mail_dir: Path) -> Iterator[Balanced]:
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAIL_URL": f"file://{mail_dir}",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/900",
        # Its own namespace: these instances' budgets are not the rest of the run's.
        "REDIS_PREFIX": f"sevenp-lb-{uuid.uuid4().hex[:8]}:",
    }
    servers = tuple(LiveServer(env).start() for _ in range(2))
    binds = _binds()
    with tempfile.TemporaryDirectory(prefix="sevenp-haproxy-") as tmp:
        config = Path(tmp) / "haproxy.cfg"
        config.write_text(_config_for(servers))
        proxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], env={**os.environ, **binds},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://{binds['SEVENP_LB_BIND']}"
        try:

            def both_up() -> bool:
                assert proxy.poll() is None, "haproxy exited"
                try:
                    seen = {
                        httpx.get(url + "/health/ready").headers.get(SERVED_BY) for _ in range(6)
                    }
                except httpx.HTTPError:
                    return False
                return seen == {"app1", "app2"}

            eventually_sync(both_up, within=20)
            email = unique_email("admin")
            made = create_user_cli({**os.environ, **servers[0].env}, email=email, role="admin")
            assert made.returncode == 0, made.stderr
            yield Balanced(url, servers, email)
        finally:
            proxy.terminate()
            proxy.wait(10)
            for server in servers:
                server.stop()


@pytest.fixture
async def through(balanced: Balanced) -> AsyncIterator[httpx.AsyncClient]:
    # One connection per request, so the balancer chooses an instance for each.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=balanced.url, timeout=15, limits=limits) as client:
        yield client


def _instances(responses: list[httpx.Response]) -> set[str | None]:
    return {r.headers.get(SERVED_BY) for r in responses}


@pytest.mark.slow
async def test_a_logout_holds_on_every_instance(through: httpx.AsyncClient) -> None:
    account = await register(through)
    before = [await through.get("/api/auth/me", headers=account.auth) for _ in range(6)]
    assert {r.status_code for r in before} == {200}
    assert _instances(before) == {"app1", "app2"}

    assert (await through.post("/api/auth/logout", headers=account.auth)).status_code == 204

    # The revocation is announced before the logout's answer; a peer may take a moment to
    # read it off its socket (the bound is SESSION_RESYNC_SECONDS, see README "Revocation").
    async def refused_by_both() -> bool:
        after = [await through.get("/api/auth/me", headers=account.auth) for _ in range(6)]
        return {r.status_code for r in after} == {401} and _instances(after) == {"app1", "app2"}

    await eventually(refused_by_both, within=5)
    later = [await through.get("/api/auth/me", headers=account.auth) for _ in range(10)]
    assert {r.status_code for r in later} == {401}


@pytest.mark.slow
async def test_the_strict_auth_limit_is_one_budget_across_instances(
    through: httpx.AsyncClient,
) -> None:
    # The balancer adds its own X-Forwarded-For line after the client's: the server reads both
    # as one list, so this client (on a trusted address itself) is counted as the address it
    # names, apart from the rest of the module's requests.
    client = {"X-Forwarded-For": f"198.51.100.{free_port() % 250}"}
    attempts = [
        await through.post(
            "/api/auth/login",
            headers=client,
            json={"email": unique_email("nobody"), "password": GOOD_PASSWORD},
        )
        for _ in range(AUTH_LIMIT + 6)
    ]
    statuses = [r.status_code for r in attempts]
    assert statuses == [401] * AUTH_LIMIT + [429] * 6, statuses
    assert _instances(attempts) == {"app1", "app2"}
    assert all(int(r.headers["retry-after"]) > 0 for r in attempts if r.status_code == 429)


@pytest.mark.slow
async def test_a_course_edit_is_seen_by_every_instance_at_once(
    through: httpx.AsyncClient, balanced: Balanced
) -> None:
    admin = await login(through, balanced.admin_email, GOOD_PASSWORD)
    teacher = await make_teacher(through, admin)
    course, _ = await published_course(through, teacher, lessons=1)
    course_id = course["id"]
    student = await register(through)

    warm = [await through.get(f"/api/courses/{course_id}", headers=student.auth) for _ in range(6)]
    assert _instances(warm) == {"app1", "app2"}
    title = f"Renamed {uuid.uuid4().hex[:6]}"
    edited = await through.put(
        f"/api/courses/{course_id}", headers=teacher.auth, json={"title": title}
    )
    assert edited.status_code == 200, edited.text

    after = [
        await through.get(f"/api/courses/{course_id}", headers=student.auth) for _ in range(10)
    ]
    assert [r.json()["title"] for r in after] == [title] * 10
    assert _instances(after) == {"app1", "app2"}


@pytest.mark.slow
async def test_an_idempotency_key_replays_on_whichever_instance(
    through: httpx.AsyncClient, balanced: Balanced
) -> None:
    admin = await login(through, balanced.admin_email, GOOD_PASSWORD)
    teacher = await make_teacher(through, admin)
    body = course_body()
    headers = {**teacher.auth, "Idempotency-Key": uuid.uuid4().hex}
    answers = [await through.post("/api/courses", headers=headers, json=body) for _ in range(8)]

    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert [r.headers.get("idempotent-replayed") for r in answers[1:]] == ["true"] * 7
    assert _instances(answers) == {"app1", "app2"}
    mine = await through.get(
        "/api/courses", headers=teacher.auth, params={"instructorId": teacher.user_id}
    )
    assert mine.status_code == 200, mine.text
    assert [c["id"] for c in mine.json()["items"]] == [answers[0].json()["id"]]
