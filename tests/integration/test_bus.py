"""SyncBus: events between instances over real Redis, reconnection, and the event schema."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest
import redis.asyncio as aioredis

from actors.bus import SyncBus
from schemas.events import SessionRevoked, UserSessionsRevoked, event_decoder, event_encoder
from tests.support.services import free_port, redis_server_process
from tests.support.waiting import eventually


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def channel() -> str:
    return f"test:bus:{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running(*buses: SyncBus) -> AsyncIterator[None]:
    try:
        async with anyio.create_task_group() as tg:
            for bus in buses:
                await tg.start(bus.run)
            yield
            tg.cancel_scope.cancel()
    finally:
        for bus in buses:
            bus.close()


def revoked(origin: str) -> SessionRevoked:
    return SessionRevoked(session_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), origin=origin)


def test_events_round_trip_through_the_one_decoder() -> None:
    events = [
        revoked("a"),
        UserSessionsRevoked(user_id="u", valid_after=1.5, session_ids=["s1", "s2"], origin="b"),
    ]
    for event in events:
        assert event_decoder.decode(event_encoder.encode(event)) == event
    assert b'"type":"session.revoked"' in event_encoder.encode(events[0])
    with pytest.raises(msgspec.ValidationError):
        event_decoder.decode(b'{"type":"no.such.event","origin":"x"}')


def test_only_bus_events_can_be_subscribed() -> None:
    bus = SyncBus(None, instance_id="a")
    with contextlib.closing(bus), pytest.raises(ValueError, match="not a bus event"):
        bus.subscribe(msgspec.Struct, lambda event: None)


async def test_without_redis_the_bus_is_inert() -> None:
    bus = SyncBus(None, instance_id="a")
    async with running(bus):
        await bus.publish(revoked("a"))
        assert not bus.connected
        assert not bus.redis_configured
        assert bus.mailbox_depth() == 0
        assert bus.details()["published"] == 0


async def test_an_event_reaches_other_instances_but_not_its_publisher(
    redis_url: str, channel: str
) -> None:
    async with redis_client(redis_url) as client_a, redis_client(redis_url) as client_b:
        bus_a = SyncBus(client_a, channel=channel, instance_id="a")
        bus_b = SyncBus(client_b, channel=channel, instance_id="b")
        seen_by_a: list[SessionRevoked] = []
        seen_by_b: list[SessionRevoked] = []
        bus_a.subscribe(SessionRevoked, seen_by_a.append)
        bus_b.subscribe(SessionRevoked, seen_by_b.append)
        async with running(bus_a, bus_b):
            await eventually(lambda: bus_a.connected and bus_b.connected, within=5)
            event = revoked("a")
            await bus_a.publish(event)
            await eventually(lambda: seen_by_b == [event], within=1)
            # One channel delivers in order: once a sees b's later event, its own came and went.
            later = revoked("b")
            await bus_b.publish(later)
            await eventually(lambda: seen_by_a == [later], within=1)
            assert bus_a.details()["published"] == 1
            assert bus_b.details()["received"] == 1
            assert bus_a.details()["received"] == 1


async def test_events_are_routed_by_type(redis_url: str, channel: str) -> None:
    async with redis_client(redis_url) as client_a, redis_client(redis_url) as client_b:
        bus_a = SyncBus(client_a, channel=channel, instance_id="a")
        bus_b = SyncBus(client_b, channel=channel, instance_id="b")
        sessions: list[SessionRevoked] = []
        users: list[UserSessionsRevoked] = []
        bus_b.subscribe(SessionRevoked, sessions.append)
        bus_b.subscribe(UserSessionsRevoked, users.append)
        async with running(bus_a, bus_b):
            await eventually(lambda: bus_a.connected and bus_b.connected, within=5)
            user_event = UserSessionsRevoked(
                user_id="u", valid_after=12.0, session_ids=["s"], origin="a"
            )
            await bus_a.publish(user_event)
            await bus_a.publish(revoked("a"))
            await eventually(lambda: len(users) == 1 and len(sessions) == 1, within=1)
            assert users == [user_event]


async def test_malformed_messages_are_counted_and_ignored(redis_url: str, channel: str) -> None:
    async with redis_client(redis_url) as client:
        bus = SyncBus(client, channel=channel, instance_id="a")
        seen: list[SessionRevoked] = []
        bus.subscribe(SessionRevoked, seen.append)
        async with running(bus):
            await eventually(lambda: bus.connected, within=5)
            await client.publish(channel, b"not json")
            await client.publish(channel, b'{"type":"session.revoked"}')
            event = revoked("b")
            await client.publish(channel, event_encoder.encode(event))
            await eventually(lambda: seen == [event], within=1)
            assert bus.details()["malformed"] == 2
            assert bus.connected


async def test_a_failing_handler_does_not_break_the_link(redis_url: str, channel: str) -> None:
    async with redis_client(redis_url) as client:
        bus = SyncBus(client, channel=channel, instance_id="a")
        seen: list[SessionRevoked] = []

        def broken(event: SessionRevoked) -> None:
            raise RuntimeError("handler bug")

        bus.subscribe(SessionRevoked, broken)
        bus.subscribe(SessionRevoked, seen.append)
        async with running(bus):
            await eventually(lambda: bus.connected, within=5)
            for _ in range(2):
                await client.publish(channel, event_encoder.encode(revoked("b")))
            await eventually(lambda: len(seen) == 2, within=1)
            assert bus.connected


async def test_a_full_mailbox_drops_and_counts() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=free_port())  # never connected
    with contextlib.closing(SyncBus(client, instance_id="a", mailbox_capacity=2)) as bus:
        for _ in range(5):
            await bus.publish(revoked("a"))
        assert bus.mailbox_depth() == 2
        assert bus.details()["dropped"] == 3
    await bus.publish(revoked("a"))
    assert bus.details()["dropped"] == 4
    await client.aclose()


async def test_reconnects_after_redis_restarts_and_publishes_what_was_queued(
    channel: str,
) -> None:
    port = free_port()
    server = contextlib.ExitStack()
    url = await anyio.to_thread.run_sync(server.enter_context, redis_server_process(port))
    try:
        async with redis_client(url) as client_a, redis_client(url) as client_b:
            bus_a = SyncBus(client_a, channel=channel, instance_id="a", io_timeout=0.5)
            bus_b = SyncBus(
                client_b, channel=channel, instance_id="b", io_timeout=0.5, ping_interval=0.2
            )
            connections: list[int] = []

            async def note_connection() -> None:
                connections.append(bus_b.link_generation)

            bus_b.on_connected(note_connection)
            seen: list[SessionRevoked] = []
            bus_b.subscribe(SessionRevoked, seen.append)
            async with running(bus_a, bus_b):
                await eventually(lambda: bus_a.connected and bus_b.connected, within=5)
                await eventually(lambda: connections == [1], within=1)

                await anyio.to_thread.run_sync(server.close)
                detected = await eventually(
                    lambda: not bus_a.connected and not bus_b.connected, within=2
                )
                assert detected < 1.0
                queued = revoked("a")
                await bus_a.publish(queued)
                assert bus_a.mailbox_depth() == 1  # held while the link is down

                server = contextlib.ExitStack()
                await anyio.to_thread.run_sync(server.enter_context, redis_server_process(port))
                await eventually(lambda: bus_a.connected and bus_b.connected, within=5)
                await eventually(lambda: connections == [1, 2], within=1)
                await eventually(lambda: seen == [queued], within=2)
                assert bus_a.details()["dropped"] == 0
                assert bus_b.details()["reconnects"] == 1
                assert bus_b.link_generation == 2
    finally:
        await anyio.to_thread.run_sync(server.close)


async def test_stop_publishes_what_is_queued_first(redis_url: str, channel: str) -> None:
    async with redis_client(redis_url) as client_a, redis_client(redis_url) as client_b:
        bus_a = SyncBus(client_a, channel=channel, instance_id="a")
        bus_b = SyncBus(client_b, channel=channel, instance_id="b")
        seen: list[SessionRevoked] = []
        bus_b.subscribe(SessionRevoked, seen.append)
        async with running(bus_b):
            async with anyio.create_task_group() as tg_a:
                await tg_a.start(bus_a.run)
                await eventually(lambda: bus_a.connected and bus_b.connected, within=5)
                events = [revoked("a") for _ in range(50)]
                for event in events:
                    await bus_a.publish(event)
                assert bus_a.request_stop()
            assert not bus_a.connected
            await eventually(lambda: len(seen) == len(events), within=1)
        bus_a.close()


async def test_a_frozen_redis_is_noticed_by_the_ping_deadline(channel: str) -> None:
    with redis_server_process() as url:
        async with redis_client(url) as client:
            info = await client.info("server")
            pid = int(info["process_id"])
            bus = SyncBus(
                client, channel=channel, instance_id="a", io_timeout=0.5, ping_interval=0.2
            )
            async with running(bus):
                await eventually(lambda: bus.connected, within=5)
                os.kill(pid, signal.SIGSTOP)  # the socket stays open; nothing answers
                try:
                    detected = await eventually(lambda: not bus.connected, within=2)
                finally:
                    os.kill(pid, signal.SIGCONT)
                assert detected < 1.0
                await eventually(lambda: bus.connected, within=5)
                assert bus.link_generation == 2
