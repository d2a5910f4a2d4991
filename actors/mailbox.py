"""Bounded actor mailbox: backpressure, request/reply, and survival across actor restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio

M = TypeVar("M")
R = TypeVar("R")


class MailboxFull(Exception):
    """send_nowait() found the mailbox at capacity."""


class MailboxClosed(Exception):
    """The mailbox was closed; nothing more can be sent or received."""


class ActorCrashed(Exception):
    """The actor died while handling a request; the cause is chained."""


class Reply(Generic[R]):
    """One-shot reply slot carried inside a request message."""

    __slots__ = ("_done", "_error", "_event", "_value")

    _value: R

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._error: BaseException | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def set(self, value: R) -> None:
        self._resolve()
        self._value = value
        self._event.set()

    def fail(self, exc: BaseException) -> None:
        self._resolve()
        self._error = exc
        self._event.set()

    async def wait(self) -> R:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def _resolve(self) -> None:
        if self._done:
            raise RuntimeError("reply already resolved")
        self._done = True


@dataclass(frozen=True, slots=True)
class _Envelope(Generic[M]):
    message: M
    reply: Reply[Any] | None


class Mailbox(Generic[M]):
    """Bounded queue owned by one actor; outlives the actor's restarts until close()."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._send, self._receive = anyio.create_memory_object_stream[_Envelope[M]](capacity)
        self._in_flight: Reply[Any] | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    def depth(self) -> int:
        """Messages waiting to be received."""
        return self._send.statistics().current_buffer_used

    async def send(self, message: M) -> None:
        """Enqueue, waiting while the mailbox is full."""
        await self._put(_Envelope(message, None))

    def send_nowait(self, message: M) -> None:
        try:
            self._send.send_nowait(_Envelope(message, None))
        except anyio.WouldBlock:
            raise MailboxFull(f"mailbox full ({self._capacity} messages)") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MailboxClosed from None

    async def call(self, build: Callable[[Reply[R]], M], *, timeout: float) -> R:  # noqa: ASYNC109
        """Send build(reply) and wait for the reply; TimeoutError covers queueing and handling."""
        with anyio.fail_after(timeout):
            reply: Reply[R] = Reply()
            await self._put(_Envelope(build(reply), reply))
            return await reply.wait()

    async def receive(self) -> M:
        try:
            envelope = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise MailboxClosed from None
        self._in_flight = envelope.reply
        return envelope.message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> M:
        try:
            return await self.receive()
        except MailboxClosed:
            raise StopAsyncIteration from None

    async def serve(self, handle: Callable[[M], Awaitable[None]]) -> None:
        """Handle messages one at a time until closed.

        If handling dies, the request being handled is answered with ActorCrashed
        before the error propagates (to the supervisor).
        """
        async for message in self:
            try:
                await handle(message)
            except BaseException as exc:
                self.fail_in_flight(exc)
                raise

    def fail_in_flight(self, cause: BaseException) -> None:
        """Answer the request last received, if still unanswered, with ActorCrashed."""
        reply, self._in_flight = self._in_flight, None
        if reply is not None and not reply.done:
            error = ActorCrashed(f"actor died while handling the request: {cause!r}")
            error.__cause__ = cause
            reply.fail(error)

    def close(self) -> None:
        """Close for good; queued requests are answered with MailboxClosed."""
        self._send.close()
        while True:
            try:
                envelope = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if envelope.reply is not None and not envelope.reply.done:
                envelope.reply.fail(MailboxClosed("mailbox closed before the request was handled"))
        self._receive.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _put(self, envelope: _Envelope[M]) -> None:
        try:
            await self._send.send(envelope)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MailboxClosed from None
