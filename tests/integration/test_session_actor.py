"""SessionActor on real PostgreSQL and Redis: local checks, sharing, resync, failing closed."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypedDict

import anyio
import pytest
import redis.asyncio as aioredis
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from actors.bus import SyncBus
from actors.session import RETENTION_MARGIN_SECONDS, SessionActor
from server.db.pool import Pool
from server.db.session_store import PostgresSessionStore
from server.db.unit import Database
from tests.support.services import free_port, redis_server_process
from tests.support.waiting import eventually

ACCESS_TTL = 900.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def channel() -> str:
    return f"test:sessions:{uuid.uuid4().hex}"


async def new_user(pool: Pool) -> str:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO users (email, password_hash, first_name, last_name)"
            " VALUES (%s, 'x', 'Test', 'User') RETURNING id::text",
            (f"{uuid.uuid4().hex}@example.test",),
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def new_session(pool: Pool, user_id: str) -> str:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO sessions (user_id, expires_at, last_seen_at)"
            " VALUES (%s, now() + interval '1 hour', '2000-01-01') RETURNING id::text",
            (user_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def revoke_in_sql(pool: Pool, session_id: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("UPDATE sessions SET revoked_at = now() WHERE id = %s", (session_id,))


class Instance:
    """One server instance's pair of actors."""

    def __init__(
        self,
        pool: Pool,
        redis: aioredis.Redis | None,
        channel: str,
        *,
        fallback_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        resync_seconds: float = 3600.0,
        mailbox_capacity: int = 10_000,
    ) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.bus = SyncBus(
            redis,
            channel=channel,
            instance_id=self.id,
            io_timeout=0.5,
            ping_interval=0.2,
            mailbox_capacity=mailbox_capacity,
        )
        self.sessions = SessionActor(
            store=PostgresSessionStore(Database(pool)),
            bus=self.bus,
            instance_id=self.id,
            access_ttl_seconds=ACCESS_TTL,
            fallback_cache_seconds=fallback_cache_seconds,
            clock=clock,
            monotonic=monotonic,
            resync_seconds=resync_seconds,
        )


@contextlib.asynccontextmanager
async def running(*instances: Instance) -> AsyncIterator[None]:
    try:
        async with anyio.create_task_group() as tg:
            for instance in instances:
                await tg.start(instance.bus.run)
                await tg.start(instance.sessions.run)
            yield
            tg.cancel_scope.cancel()
    finally:
        for instance in instances:
            instance.bus.close()


@contextlib.asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        yield client
    finally:
        await client.aclose()


def now_iat() -> int:
    return int(time.time())


class Claims(TypedDict):
    user_id: str
    session_id: str
    issued_at: float


async def test_a_revocation_applies_locally_at_once(pool: Pool) -> None:
    user_id = await new_user(pool)
    session_id = await new_session(pool, user_id)
    instance = Instance(pool, None, "unused")
    async with running(instance):
        actor = instance.sessions
        token = Claims(user_id=user_id, session_id=session_id, issued_at=now_iat())
        assert actor.check_local(**token) is True
        assert actor.details()["mode"] == "local"
        assert not actor.degraded
        revoked_before = actor.details()["revoked"]  # the shared database's other tests
        assert isinstance(revoked_before, int)
        await revoke_in_sql(pool, session_id)
        await actor.session_revoked(session_id=session_id, user_id=user_id)
        assert actor.check_local(**token) is False
        assert await actor.is_valid(**token) is False
        assert actor.details()["revoked"] == revoked_before + 1


async def test_a_revocation_on_one_instance_reaches_the_other_within_a_second(
    pool: Pool, redis_url: str, channel: str
) -> None:
    user_id = await new_user(pool)
    session_id = await new_session(pool, user_id)
    token = Claims(user_id=user_id, session_id=session_id, issued_at=now_iat())
    async with redis_client(redis_url) as client_a, redis_client(redis_url) as client_b:
        a, b = Instance(pool, client_a, channel), Instance(pool, client_b, channel)
        async with running(a, b):
            await eventually(lambda: not a.sessions.degraded and not b.sessions.degraded, within=5)
            assert b.sessions.details()["mode"] == "synced"
            assert b.sessions.check_local(**token) is True

            await revoke_in_sql(pool, session_id)
            await a.sessions.session_revoked(session_id=session_id, user_id=user_id)
            assert a.sessions.check_local(**token) is False
            seen_after = await eventually(
                lambda: b.sessions.check_local(**token) is False, within=1
            )
            print(f"revocation seen by the peer after {seen_after * 1000:.1f} ms")
            assert b.sessions.details()["database_checks"] == 0


async def test_user_sessions_revoked_voids_older_tokens_but_not_newer(
    pool: Pool, redis_url: str, channel: str
) -> None:
    user_id = await new_user(pool)
    old_session = await new_session(pool, user_id)
    new_session_id = await new_session(pool, user_id)
    valid_after = round(time.time(), 3)
    async with redis_client(redis_url) as client_a, redis_client(redis_url) as client_b:
        a, b = Instance(pool, client_a, channel), Instance(pool, client_b, channel)
        async with running(a, b):
            await eventually(lambda: not a.sessions.degraded and not b.sessions.degraded, within=5)
            await a.sessions.user_sessions_revoked(
                user_id=user_id, valid_after=valid_after, session_ids=[old_session]
            )
            await eventually(
                lambda: (
                    b.sessions.check_local(
                        user_id=user_id, session_id=new_session_id, issued_at=valid_after - 0.001
                    )
                    is False
                ),
                within=1,
            )
            for actor in (a.sessions, b.sessions):

                def check(session_id: str, issued_at: float, actor: SessionActor = actor) -> object:
                    return actor.check_local(
                        user_id=user_id, session_id=session_id, issued_at=issued_at
                    )

                # Millisecond-exact: a token from just before the change is void, one from
                # the change's own millisecond on is good; a revoked session stays void.
                assert check(new_session_id, valid_after - 0.001) is False
                assert check(new_session_id, valid_after) is True
                assert check(old_session, valid_after + 1) is False
                assert check(new_session_id, valid_after + 1) is True


async def test_start_resyncs_revocations_made_directly_in_sql(pool: Pool) -> None:
    user_id = await new_user(pool)
    revoked_session = await new_session(pool, user_id)
    live_session = await new_session(pool, user_id)
    other_user = await new_user(pool)
    other_session = await new_session(pool, other_user)
    await revoke_in_sql(pool, revoked_session)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE users SET tokens_valid_after = now() WHERE id = %s", (other_user,)
        )
    old_iat = now_iat() - 10
    instance = Instance(pool, None, "unused")
    async with running(instance):
        actor = instance.sessions
        assert (
            actor.check_local(user_id=user_id, session_id=revoked_session, issued_at=old_iat)
            is False
        )
        assert (
            actor.check_local(user_id=user_id, session_id=live_session, issued_at=old_iat) is True
        )
        assert (
            actor.check_local(user_id=other_user, session_id=other_session, issued_at=old_iat)
            is False
        )
        assert (
            actor.check_local(user_id=other_user, session_id=other_session, issued_at=now_iat() + 1)
            is True
        )


@contextlib.contextmanager
def restartable_redis() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A private redis-server: its URL, stop() and start() (again on the same port)."""
    port = free_port()
    stack = contextlib.ExitStack()

    def start() -> None:
        stack.enter_context(redis_server_process(port))

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", stack.close, start
    finally:
        stack.close()


async def test_link_down_fails_closed_on_the_database_then_resyncs(
    pool: Pool, channel: str
) -> None:
    user_id = await new_user(pool)
    live = await new_session(pool, user_id)
    revoked_during_outage = await new_session(pool, user_id)
    cached_then_revoked = await new_session(pool, user_id)
    iat = now_iat()

    def token(session_id: str) -> Claims:
        return Claims(user_id=user_id, session_id=session_id, issued_at=iat)

    with restartable_redis() as (url, stop_redis, start_redis):
        async with redis_client(url) as client:
            monotonic = [0.0]
            instance = Instance(
                pool, client, channel, fallback_cache_seconds=0.3, monotonic=lambda: monotonic[0]
            )
            actor = instance.sessions
            async with running(instance):
                await eventually(lambda: not actor.degraded, within=5)

                await anyio.to_thread.run_sync(stop_redis)
                await eventually(lambda: actor.degraded, within=1)
                assert actor.details()["mode"] == "degraded"
                assert actor.check_local(**token(live)) is None

                assert await actor.is_valid(**token(live)) is True
                assert await actor.check_database(**token(cached_then_revoked)) is True
                await revoke_in_sql(pool, revoked_during_outage)
                await revoke_in_sql(pool, cached_then_revoked)
                assert await actor.is_valid(**token(revoked_during_outage)) is False
                # Answers are cached for fallback_cache_seconds, then asked again.
                assert await actor.check_database(**token(cached_then_revoked)) is True
                monotonic[0] += 0.35
                assert await actor.check_database(**token(cached_then_revoked)) is False
                assert await actor.check_database(**token(str(uuid.uuid4()))) is False
                details = actor.details()
                assert details["cache_hits"] == 1
                assert details["database_checks"] == 5

                await anyio.to_thread.run_sync(start_redis)
                await eventually(lambda: not actor.degraded, within=5)
                assert actor.details()["mode"] == "synced"
                # The resync on reconnection brought in what was revoked meanwhile.
                assert actor.check_local(**token(revoked_during_outage)) is False
                assert actor.check_local(**token(live)) is True


async def test_last_seen_is_written_in_one_batched_update(pool: Pool) -> None:
    user_id = await new_user(pool)
    session_ids = [await new_session(pool, user_id) for _ in range(20)]
    marker = time.time() - 1
    name = f"test_updates_{uuid.uuid4().hex[:8]}"
    names = {
        "table": sql.Identifier(name),
        "function": sql.Identifier(f"{name}_count"),
        "user": sql.Literal(user_id),
    }
    # Counts the UPDATE statements touching this test's sessions (the live server shares the
    # database and flushes its own lastSeen).
    count_update_statements = sql.SQL("""
        CREATE TABLE {table} (n int NOT NULL);
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {table}
                SELECT 1 WHERE EXISTS (SELECT FROM changed WHERE user_id = {user}::uuid);
                RETURN NULL;
            END $$;
        CREATE TRIGGER {table} AFTER UPDATE ON sessions REFERENCING NEW TABLE AS changed
            FOR EACH STATEMENT EXECUTE FUNCTION {function}();
    """).format(**names)

    async def seen_since_marker() -> int:
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM sessions WHERE id = ANY(%s::uuid[])"
                " AND last_seen_at >= to_timestamp(%s)",
                (session_ids, marker),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async with pool.connection() as conn:
        await conn.execute(count_update_statements)
    try:
        instance = Instance(pool, None, "unused")
        actor = instance.sessions
        async with running(instance):
            for session_id in session_ids:
                actor.touch(session_id)
                actor.touch(session_id)
            actor.touch("not-a-uuid")
            assert actor.details()["pending_last_seen"] == 21
            assert await seen_since_marker() == 0
            await actor.flush_last_seen()
            assert await seen_since_marker() == 20
            assert actor.details()["pending_last_seen"] == 0
            async with pool.connection() as conn:
                cursor = await conn.execute(sql.SQL("SELECT count(*) FROM {table}").format(**names))
                assert await cursor.fetchone() == (1,)

            late = await new_session(pool, user_id)
            actor.touch(late)
        # Stopping flushes what is still pending.
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT last_seen_at >= to_timestamp(%s) FROM sessions WHERE id = %s",
                (marker, late),
            )
            assert await cursor.fetchone() == (True,)
    finally:
        async with pool.connection() as conn:
            await conn.execute(
                sql.SQL(
                    "DROP TRIGGER {table} ON sessions; DROP FUNCTION {function}(); DROP TABLE {table}"
                ).format(**names)
            )


async def test_pruning_forgets_what_no_live_token_can_concern(pool: Pool) -> None:
    now = [time.time()]
    instance = Instance(pool, None, "unused", clock=lambda: now[0])
    actor = instance.sessions
    with contextlib.closing(instance.bus):
        for _ in range(1000):
            await actor.session_revoked(session_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()))
        for _ in range(500):
            await actor.user_sessions_revoked(
                user_id=str(uuid.uuid4()), valid_after=now[0], session_ids=[str(uuid.uuid4())]
            )
        assert actor.details()["revoked"] == 1500
        assert actor.details()["users_invalidated"] == 500

        now[0] += ACCESS_TTL
        assert actor.prune() == 0
        recent = str(uuid.uuid4())
        await actor.session_revoked(session_id=recent, user_id=str(uuid.uuid4()))

        now[0] += RETENTION_MARGIN_SECONDS + 1
        assert actor.prune() == 2000
        assert actor.details()["revoked"] == 1
        assert actor.details()["users_invalidated"] == 0


async def test_instances_flushing_the_same_sessions_at_once_never_deadlock(pool: Pool) -> None:
    """Two workers write lastSeen for overlapping sessions, touched in opposite orders."""
    user_id = await new_user(pool)
    session_ids = [await new_session(pool, user_id) for _ in range(300)]
    first, second = Instance(pool, None, "unused"), Instance(pool, None, "unused")
    async with running(first, second):
        for _ in range(15):
            for session_id in session_ids:
                first.sessions.touch(session_id)
            for session_id in reversed(session_ids):
                second.sessions.touch(session_id)
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.sessions.flush_last_seen)
                tg.start_soon(second.sessions.flush_last_seen)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM sessions WHERE user_id = %s AND last_seen_at > '2000-01-01'",
            (user_id,),
        )
        assert await cursor.fetchone() == (300,)


RESYNC = 0.3


async def test_an_event_no_peer_hears_is_made_up_by_the_periodic_resync(
    pool: Pool, redis_url: str, channel: str
) -> None:
    """A's announcements go where B never listens: B learns from PostgreSQL within the bound."""
    user_id = await new_user(pool)
    session_id, other_user = await new_session(pool, user_id), await new_user(pool)
    token = Claims(user_id=user_id, session_id=session_id, issued_at=now_iat())
    async with redis_client(redis_url) as client:
        a = Instance(pool, client, channel + ":lost", resync_seconds=3600)
        b = Instance(pool, client, channel, resync_seconds=RESYNC)
        async with running(a, b):
            await eventually(lambda: not a.sessions.degraded and not b.sessions.degraded, within=5)
            assert b.sessions.check_local(**token) is True
            await revoke_in_sql(pool, session_id)
            await a.sessions.session_revoked(session_id=session_id, user_id=user_id)
            assert a.sessions.check_local(**token) is False
            took = await eventually(lambda: b.sessions.check_local(**token) is False, within=5)
            assert took < RESYNC + 1.0
            assert not b.sessions.degraded

            later = Claims(user_id=other_user, session_id=str(uuid.uuid4()), issued_at=now_iat())
            cutoff = time.time() + 1
            async with pool.connection() as conn:
                await conn.execute(
                    "UPDATE users SET tokens_valid_after = to_timestamp(%s) WHERE id = %s",
                    (cutoff, other_user),
                )
            await eventually(lambda: b.sessions.check_local(**later) is False, within=5)
            assert b.sessions.details()["catch_ups"] >= 1


async def test_a_gap_in_a_peers_events_forces_a_resync(
    pool: Pool, redis_url: str, channel: str
) -> None:
    """A's bus drops events (its mailbox is full); B sees the gap at A's next event."""
    user_id = await new_user(pool)
    burst = [await new_session(pool, user_id) for _ in range(6)]
    last = await new_session(pool, user_id)
    iat = now_iat()

    def refused(actor: SessionActor, session_id: str) -> bool:
        token = Claims(user_id=user_id, session_id=session_id, issued_at=iat)
        return actor.check_local(**token) is False

    async with redis_client(redis_url) as client:
        a = Instance(pool, client, channel, mailbox_capacity=1)
        b = Instance(pool, client, channel)
        async with running(a, b):
            await eventually(lambda: not a.sessions.degraded and not b.sessions.degraded, within=5)
            for session_id in [*burst, last]:
                await revoke_in_sql(pool, session_id)
            # Queued back to back into a mailbox of one: some are dropped.
            for session_id in burst:
                await a.sessions.session_revoked(session_id=session_id, user_id=user_id)
            dropped = a.bus.details()["dropped"]
            assert isinstance(dropped, int)
            assert dropped >= 1
            await eventually(lambda: a.bus.mailbox_depth() == 0, within=5)
            await a.sessions.session_revoked(session_id=last, user_id=user_id)

            await eventually(lambda: all(refused(b.sessions, s) for s in [*burst, last]), within=5)
            assert b.bus.details()["gaps"] >= 1
            assert b.sessions.details()["bus_gaps"] >= 1
            assert b.sessions.details()["catch_ups"] == 0


async def test_a_revocation_during_a_redis_outage_is_refused_on_the_peer_within_the_bound(
    pool: Pool, channel: str
) -> None:
    user_id = await new_user(pool)
    session_id = await new_session(pool, user_id)
    token = Claims(user_id=user_id, session_id=session_id, issued_at=now_iat())
    with restartable_redis() as (url, stop_redis, _start_redis):
        async with redis_client(url) as client_a, redis_client(url) as client_b:
            a = Instance(pool, client_a, channel, resync_seconds=RESYNC)
            b = Instance(pool, client_b, channel, resync_seconds=RESYNC)
            async with running(a, b):
                await eventually(
                    lambda: not a.sessions.degraded and not b.sessions.degraded, within=5
                )
                assert await b.sessions.is_valid(**token) is True
                await anyio.to_thread.run_sync(stop_redis)
                await revoke_in_sql(pool, session_id)
                await a.sessions.session_revoked(session_id=session_id, user_id=user_id)

                async def refused_by_b() -> bool:
                    return not await b.sessions.is_valid(**token)

                took = await eventually(refused_by_b, within=5)
                assert took < RESYNC + 1.0
