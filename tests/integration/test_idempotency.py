"""Retry-safe writes: `Idempotency-Key` on registration (live servers) and on a test-only route.

The test-only route (`POST /api/test/notes`) is mounted in an in-process app on the run's
database, called through httpx's ASGI transport on the test's own event loop (Litestar's
test client runs requests one at a time); it writes one row and can be held open until the
test releases it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest
from litestar import Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from actors.retention import RetentionActor
from server.app import create_app
from server.db.retention import PostgresRetention
from server.db.statement import Statement
from server.db.unit import UnitOfWork
from server.errors import Conflict
from server.http.access import Identity
from server.http.idempotency import Idempotency
from server.runtime import Runtime, build_runtime
from server.services.idempotency import KeyedRequest
from server.settings import load_settings
from tests.support.accounts import GOOD_PASSWORD, unique_email
from tests.support.live_server import RUN_REDIS_PREFIX, TEST_JWT_SECRET, LiveServer

pytestmark = pytest.mark.timeout(120)

REPLAYED = "idempotent-replayed"


def _registration(email: str | None = None) -> dict[str, str]:
    return {
        "email": email or unique_email("idem"),
        "password": GOOD_PASSWORD,
        "firstName": "Ada",
        "lastName": "Lovelace",
    }


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _count(database_url: str, sql: str, *params: Any) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(sql.encode(), params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _users(database_url: str, email: str) -> int:
    return await _count(database_url, "SELECT count(*) FROM users WHERE email = %s", email)


# --- registration on live servers -------------------------------------------------------


async def test_a_retried_registration_replays_its_201(
    http: httpx.AsyncClient, database_url: str
) -> None:
    body, key = _registration(), _key()
    first = await http.post("/api/auth/register", json=body, headers=key)
    again = await http.post("/api/auth/register", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert sorted(again.headers.get_list("set-cookie")) == sorted(
        first.headers.get_list("set-cookie")
    )
    assert await _users(database_url, body["email"]) == 1
    without_key = await http.post("/api/auth/register", json=body)
    assert without_key.status_code == 409


async def test_the_key_with_another_body_is_422(http: httpx.AsyncClient) -> None:
    key = _key()
    first = await http.post("/api/auth/register", json=_registration(), headers=key)
    other = await http.post("/api/auth/register", json=_registration(), headers=key)
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert REPLAYED not in other.headers


@pytest.mark.parametrize(
    ("key", "status"),
    [("k" * 256, 400), ("", 400), ("a\tb", 400), ("caf\u00e9", 400), ("k" * 255, 201)],
)
async def test_malformed_keys_are_400(http: httpx.AsyncClient, key: str, status: int) -> None:
    response = await http.post(
        "/api/auth/register",
        json=_registration(),
        headers=[("Idempotency-Key", key.encode("latin-1"))],
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_quoted_key_is_the_same_key(http: httpx.AsyncClient) -> None:
    key, body = str(uuid.uuid4()), _registration()
    first = await http.post("/api/auth/register", json=body, headers={"Idempotency-Key": key})
    quoted = f'"{key}"'
    again = await http.post("/api/auth/register", json=body, headers={"Idempotency-Key": quoted})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers[REPLAYED] == "true"


async def test_fifty_concurrent_registrations_under_one_key_make_one_account(
    http: httpx.AsyncClient, database_url: str
) -> None:
    body, key = _registration(), _key()
    responses: list[httpx.Response] = []

    async def send() -> None:
        responses.append(await http.post("/api/auth/register", json=body, headers=key))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(send)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    fresh = [r for r in responses if r.status_code == 201 and REPLAYED not in r.headers]
    assert len(fresh) == 1
    assert all(r.content == fresh[0].content for r in responses if r.status_code == 201)
    assert await _users(database_url, body["email"]) == 1
    again = await http.post("/api/auth/register", json=body, headers=key)
    assert again.headers[REPLAYED] == "true"
    assert again.content == fresh[0].content


@pytest.fixture(scope="module")
def second_server(live_server: LiveServer) -> Iterator[LiveServer]:
    server = LiveServer(
        {k: live_server.env[k] for k in ("DATABASE_URL", "REDIS_URL", "MAIL_URL")}
    ).start()
    yield server
    server.stop()


async def test_a_replay_on_another_instance_gets_the_same_answer(
    http: httpx.AsyncClient, second_server: LiveServer, database_url: str
) -> None:
    body, key = _registration(), _key()
    first = await http.post("/api/auth/register", json=body, headers=key)
    async with httpx.AsyncClient(base_url=second_server.base_url, timeout=15) as other:
        again = await other.post("/api/auth/register", json=body, headers=key)
        mismatch = await other.post("/api/auth/register", json=_registration(), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.content == first.content
    assert mismatch.status_code == 422
    assert await _users(database_url, body["email"]) == 1


# --- a test-only route in an in-process app -------------------------------------------


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class Note(msgspec.Struct):
    id: int
    author: str
    text: str


_INSERT_NOTE = Statement(
    "test.insert_note",
    "INSERT INTO idempotency_test_notes (author, text) VALUES (%(author)s, %(text)s)"
    " RETURNING id, author, text",
)
HOLDS: dict[str, anyio.Event] = {}
ARRIVED: dict[str, anyio.Event] = {}


@post("/api/test/notes", opt={"auth": True}, status_code=201)
async def create_note(
    uow: NamedDependency[UnitOfWork],
    identity: NamedDependency[Identity],
    idempotency: NamedDependency[Idempotency],
    data: JSONBody[NoteIn],
) -> Response[Note]:
    note = await uow.one(_INSERT_NOTE, {"author": identity.user_id, "text": data.text}, Note)
    if data.text in ARRIVED:
        ARRIVED[data.text].set()
        await HOLDS[data.text].wait()
    if data.text.startswith("fail"):
        raise Conflict("refused after writing")
    if data.text.startswith("teapot"):
        return Response(note, status_code=418)
    return await idempotency.keep(note)


@pytest.fixture
async def in_process(
    database_url: str, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS idempotency_test_notes"
            " (id bigserial PRIMARY KEY, author text NOT NULL, text text NOT NULL)"
        )
    settings = load_settings(
        {
            "SEVENP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": RUN_REDIS_PREFIX,
            "JWT_SECRET": TEST_JWT_SECRET,
            "MAIL_URL": "console://",
            "RATE_LIMIT_ENABLED": "false",
        }
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime)
    app.register(create_note)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://in-process") as client,
    ):
        yield client, runtime


async def _signed_up(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/auth/register", json=_registration())
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["token"]}


async def _notes(database_url: str, text: str) -> int:
    return await _count(
        database_url, "SELECT count(*) FROM idempotency_test_notes WHERE text = %s", text
    )


async def test_a_duplicate_while_the_first_runs_is_409(
    in_process: tuple[httpx.AsyncClient, Runtime], database_url: str
) -> None:
    client, _ = in_process
    auth, key, text = await _signed_up(client), _key(), f"held-{uuid.uuid4()}"
    HOLDS[text], ARRIVED[text] = anyio.Event(), anyio.Event()
    results: list[Any] = []

    async def first() -> None:
        results.append(
            await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await ARRIVED[text].wait()
        duplicate = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"] == "application/problem+json"
        assert duplicate.headers["retry-after"] == "1"
        HOLDS[text].set()
    assert results[0].status_code == 201
    again = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
    assert again.headers[REPLAYED] == "true"
    assert again.json() == results[0].json()
    assert await _notes(database_url, text) == 1


async def test_keys_of_two_users_do_not_collide(
    in_process: tuple[httpx.AsyncClient, Runtime], database_url: str
) -> None:
    client, _ = in_process
    ada, bob, key, text = await _signed_up(client), await _signed_up(client), _key(), "shared"
    first = await client.post("/api/test/notes", json={"text": text}, headers=ada | key)
    second = await client.post("/api/test/notes", json={"text": text}, headers=bob | key)
    assert first.status_code == second.status_code == 201
    assert REPLAYED not in second.headers
    assert first.json()["author"] != second.json()["author"]


@pytest.mark.parametrize("text", ["fail", "teapot"])
async def test_an_answer_that_is_not_2xx_is_not_kept(
    in_process: tuple[httpx.AsyncClient, Runtime], database_url: str, text: str
) -> None:
    client, _ = in_process
    auth, key, text = await _signed_up(client), _key(), f"{text}-{uuid.uuid4()}"
    first = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
    retry = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
    assert first.status_code == retry.status_code == (409 if text.startswith("fail") else 418)
    assert REPLAYED not in retry.headers
    rows = await _notes(database_url, text)
    assert rows == (0 if text.startswith("fail") else 2)


async def test_a_claim_whose_lease_ran_out_is_taken_over(
    in_process: tuple[httpx.AsyncClient, Runtime], database_url: str
) -> None:
    client, runtime = in_process
    auth = await _signed_up(client)
    user_id = (await client.get("/api/auth/me", headers=auth)).json()["userId"]
    key, text = str(uuid.uuid4()), f"orphan-{uuid.uuid4()}"
    body = msgspec.json.encode({"text": text})
    keyed = KeyedRequest.of(f"user:{user_id}", key, "POST", "/api/test/notes", body)
    assert not isinstance(await runtime.idempotency_keys.claim(keyed), msgspec.Struct)
    headers = auth | {"Idempotency-Key": key, "Content-Type": "application/json"}
    blocked = await client.post("/api/test/notes", content=body, headers=headers)
    assert blocked.status_code == 409
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET lease_until = now() - interval '1 second' WHERE id = %s",
            (keyed.id,),
        )
    taken = await client.post("/api/test/notes", content=body, headers=headers)
    assert taken.status_code == 201
    assert await _notes(database_url, text) == 1


async def test_expired_keys_are_purged_and_run_again(
    in_process: tuple[httpx.AsyncClient, Runtime], database_url: str
) -> None:
    client, runtime = in_process
    auth, key, text = await _signed_up(client), _key(), f"old-{uuid.uuid4()}"
    first = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
    assert first.status_code == 201
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
            " WHERE created_at > now() - interval '1 minute' AND status IS NOT NULL"
        )
    retention = RetentionActor(
        store=PostgresRetention(runtime.database), horizon_seconds=86_400, interval=60
    )
    deleted = await retention.run_round()
    assert deleted["retention.idempotency_keys"] >= 1
    assert (
        await _count(
            database_url, "SELECT count(*) FROM idempotency_keys WHERE expires_at <= now()"
        )
        == 0
    )
    again = await client.post("/api/test/notes", json={"text": text}, headers=auth | key)
    assert again.status_code == 201
    assert REPLAYED not in again.headers
    assert await _notes(database_url, text) == 2
