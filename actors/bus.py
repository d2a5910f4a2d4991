"""SyncBus: the one Redis pub/sub link that carries bus events between instances.

Outgoing events wait in a bounded mailbox and are published by the actor's
loop, each under a deadline; while the link is down they stay queued (a peer
whose own link never broke would otherwise never hear of them) and are
dropped, with a log line, only when the mailbox is full or an event failed
to publish `_MAX_PUBLISH_ATTEMPTS` times. Incoming events from other
instances go to the handlers subscribed to their type. Each event is numbered
(`seq`) when it is queued, per instance, so a dropped or lost one leaves a gap
that its peers see at that instance's next event: they run their `on_gap`
callbacks then. After every
(re)connection the `on_connected` callbacks run so that subscribers resync
from PostgreSQL, the source of truth, for what they missed meanwhile.

A dead link is noticed promptly: the subscribed connection is PINGed every
`ping_interval` and must answer within `io_timeout`, the publishing side is
PINGed when idle, and redis-py's silent reconnect-and-resubscribe is
switched off on the subscribed connection so that every break surfaces here
(`connected` goes False, `link_generation` moves on at the next connection).

Without Redis (single-instance mode) the bus is inert: `publish` does
nothing and `connected` is False.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast, get_args

import anyio
import anyio.abc
import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from actors.base import Actor
from actors.mailbox import Mailbox, MailboxClosed, MailboxFull
from schemas.events import BusEvent, event_decoder, event_encoder

logger = logging.getLogger("sevenp.bus")

EventT = TypeVar("EventT", bound=msgspec.Struct)
ConnectedCallback = Callable[[], Awaitable[None]]
GapCallback = Callable[[], None]

_EVENT_TYPES: tuple[type[Any], ...] = get_args(BusEvent)
_PING_MESSAGE = "sevenp-bus-ping"
_BACKOFF_INITIAL_SECONDS = 0.1
_BACKOFF_MAX_SECONDS = 2.0
_MAX_PUBLISH_ATTEMPTS = 3
_DRAIN_SECONDS = 2.0
_MAX_ORIGINS = 10_000


class LinkLost(Exception):
    """The Redis link stopped answering."""


_LINK_ERRORS = (RedisError, OSError, TimeoutError, LinkLost)


class SyncBus(Actor):
    """Publishes this instance's events and routes other instances' events by type."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        channel: str = "sevenp:events",
        instance_id: str,
        mailbox_capacity: int = 10_000,
        io_timeout: float = 2.0,
        ping_interval: float = 1.0,
    ) -> None:
        self.name = "bus"
        self._redis = redis
        self._channel = channel
        self._instance_id = instance_id
        self._io_timeout = io_timeout
        self._ping_interval = ping_interval
        self._mailbox: Mailbox[BusEvent] | None = (
            Mailbox(mailbox_capacity) if redis is not None else None
        )
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = {}
        self._connected_callbacks: list[ConnectedCallback] = []
        self._gap_callbacks: list[GapCallback] = []
        self._seq = 0
        self._last_seq: dict[str, int] = {}
        self._gaps = 0
        self._connected = False
        self._link_generation = 0
        self._unsent: BusEvent | None = None
        self._unsent_attempts = 0
        self._stop_requested: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._published = 0
        self._received = 0
        self._dropped = 0
        self._malformed = 0
        self._reconnects = 0

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    @property
    def connected(self) -> bool:
        """Subscribed and answering; always False without Redis."""
        return self._connected

    @property
    def link_generation(self) -> int:
        """How many times the link has been established; 0 before the first time."""
        return self._link_generation

    def subscribe(self, event_type: type[EventT], handler: Callable[[EventT], None]) -> None:
        """Call `handler` with each event of `event_type` published by another instance."""
        if event_type not in _EVENT_TYPES:
            raise ValueError(f"{event_type.__name__} is not a bus event")
        self._handlers.setdefault(event_type, []).append(handler)

    def on_connected(self, callback: ConnectedCallback) -> None:
        """Await `callback` after each (re)connection, once subscribed."""
        self._connected_callbacks.append(callback)

    def on_gap(self, callback: GapCallback) -> None:
        """Call `callback` when a peer's event numbers show that one of its events was lost."""
        self._gap_callbacks.append(callback)

    async def publish(self, event: BusEvent) -> None:
        """Queue `event` for the other instances; never waits on Redis."""
        if self._mailbox is None:
            return
        self._seq += 1
        event.seq = self._seq
        try:
            self._mailbox.send_nowait(event)
        except MailboxFull:
            self._count_dropped(event, "the outgoing mailbox is full")
        except MailboxClosed:
            self._count_dropped(event, "the bus is closed")

    def close(self) -> None:
        """Close the mailbox for good, once the actor has stopped and will not be restarted."""
        if self._mailbox is not None:
            self._mailbox.close()

    @property
    def channel(self) -> str:
        """The Redis channel events travel on."""
        return self._channel

    def mailbox_depth(self) -> int:
        return 0 if self._mailbox is None else self._mailbox.depth()

    def details(self) -> Mapping[str, object]:
        return {
            "connected": self._connected,
            "published": self._published,
            "received": self._received,
            "dropped": self._dropped,
            "malformed": self._malformed,
            "reconnects": self._reconnects,
            "gaps": self._gaps,
        }

    def request_stop(self) -> bool:
        """Stop after publishing what is queued, for up to `_DRAIN_SECONDS`."""
        if self._stop_requested is None:
            return False
        self._stop_requested.set()
        return True

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        if self._redis is None or self._mailbox is None:
            task_status.started()
            await anyio.sleep_forever()
            return
        redis, mailbox = self._redis, self._mailbox
        stop_requested = self._stop_requested = anyio.Event()
        task_status.started()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_linked, redis, mailbox)
                await stop_requested.wait()
                await self._drain()
                tg.cancel_scope.cancel()
        finally:
            self._connected = False
            self._stop_requested = self._drained = None

    async def _keep_linked(self, redis: aioredis.Redis, mailbox: Mailbox[BusEvent]) -> None:
        backoff = _BACKOFF_INITIAL_SECONDS
        while True:
            generation = self._link_generation
            try:
                await self._link_once(redis, mailbox)
            except* _LINK_ERRORS as group:
                error = _first_leaf(group)
                if self._link_generation != generation:
                    logger.warning("Redis link lost: %r; reconnecting", error)
                else:
                    logger.debug("Redis link not established: %r", error)
            if self._link_generation != generation:
                backoff = _BACKOFF_INITIAL_SECONDS
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)

    async def _link_once(self, redis: aioredis.Redis, mailbox: Mailbox[BusEvent]) -> None:
        """Subscribe, then receive, publish and notify until the link breaks."""
        pubsub = redis.pubsub()
        connection: AbstractConnection | None = None
        shared_retry: Retry | None = None
        try:
            with anyio.fail_after(self._io_timeout):
                await pubsub.subscribe(self._channel)
                connection = cast("AbstractConnection", pubsub.connection)
                # Without this redis-py would reconnect and resubscribe behind our back,
                # and events published during the gap would be missed unnoticed.
                shared_retry, connection.retry = connection.retry, Retry(NoBackoff(), 0)
                await _confirmed(pubsub)
            self._link_generation += 1
            if self._link_generation > 1:
                self._reconnects += 1
                logger.info("Redis link re-established")
            self._connected = True
            # What was missed while unlinked is the resync's business, not a gap.
            self._last_seq.clear()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receive, pubsub)
                tg.start_soon(self._publish_queued, redis, mailbox)
                tg.start_soon(self._notify_connected)
        finally:
            self._connected = False
            with anyio.move_on_after(self._io_timeout, shield=True):
                if connection is not None and shared_retry is not None:
                    connection.retry = shared_retry
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _receive(self, pubsub: PubSub) -> None:
        poll = self._ping_interval / 2
        next_ping = anyio.current_time()
        pong_due: float | None = None
        while True:
            now = anyio.current_time()
            if pong_due is not None and now > pong_due:
                raise LinkLost(f"no answer to PING within {self._io_timeout:g}s")
            if pong_due is None and now >= next_ping:
                with anyio.fail_after(self._io_timeout):
                    await pubsub.ping(_PING_MESSAGE)
                pong_due = now + self._io_timeout
                next_ping = now + self._ping_interval
            with anyio.fail_after(poll + self._io_timeout):
                message: dict[str, Any] | None = await pubsub.get_message(timeout=poll)
            if message is None:
                continue
            if message["type"] == "pong":
                pong_due = None
            elif message["type"] == "message":
                self._dispatch(message["data"])

    def _dispatch(self, data: bytes) -> None:
        try:
            event = event_decoder.decode(data)
        except msgspec.DecodeError as exc:
            self._malformed += 1
            logger.warning("ignored a malformed bus message: %s", exc)
            return
        if event.origin == self._instance_id:
            return
        self._received += 1
        self._check_sequence(event.origin, event.seq)
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                logger.exception("bus handler %r failed on %r", handler, event)

    async def _publish_queued(self, redis: aioredis.Redis, mailbox: Mailbox[BusEvent]) -> None:
        while True:
            if self._unsent is not None and self._unsent_attempts >= _MAX_PUBLISH_ATTEMPTS:
                self._count_dropped(
                    self._unsent, f"{_MAX_PUBLISH_ATTEMPTS} publish attempts failed"
                )
                self._unsent, self._unsent_attempts = None, 0
            if self._unsent is None and self._drained is not None and not mailbox.depth():
                self._drained.set()
            if self._unsent is None:
                with anyio.move_on_after(self._ping_interval):
                    self._unsent = await mailbox.receive()
            if self._unsent is None:
                with anyio.fail_after(self._io_timeout):
                    await redis.ping()
                continue
            self._unsent_attempts += 1
            with anyio.fail_after(self._io_timeout):
                await redis.publish(self._channel, event_encoder.encode(self._unsent))
            self._unsent, self._unsent_attempts = None, 0
            self._published += 1

    def _check_sequence(self, origin: str, seq: int) -> None:
        last = self._last_seq.get(origin)
        if last is not None and seq > last + 1:
            self._gaps += 1
            logger.warning("bus events %d..%d of %s were lost", last + 1, seq - 1, origin)
            for callback in list(self._gap_callbacks):
                try:
                    callback()
                except Exception:
                    logger.exception("on_gap callback %r failed", callback)
        if last is None or seq > last:
            if last is None and len(self._last_seq) >= _MAX_ORIGINS:
                self._last_seq.clear()
            self._last_seq[origin] = seq

    async def _notify_connected(self) -> None:
        for callback in list(self._connected_callbacks):
            try:
                with anyio.fail_after(self._io_timeout):
                    await callback()
            except Exception:
                logger.exception("on_connected callback %r failed", callback)

    async def _drain(self) -> None:
        if not self._connected or (self._unsent is None and not self.mailbox_depth()):
            return
        drained = self._drained = anyio.Event()
        with anyio.move_on_after(_DRAIN_SECONDS):
            await drained.wait()

    def _count_dropped(self, event: BusEvent, reason: str) -> None:
        self._dropped += 1
        if self._dropped == 1 or self._dropped % 1000 == 0:
            logger.warning(
                "dropped bus event %s (%s; %d dropped so far)",
                type(event).__name__,
                reason,
                self._dropped,
            )


async def _confirmed(pubsub: PubSub) -> None:
    """Wait for Redis to confirm the subscription: from then on no publication is missed."""
    while True:
        message: dict[str, Any] | None = await pubsub.get_message(timeout=0.1)
        if message is not None and message["type"] == "subscribe":
            return


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
