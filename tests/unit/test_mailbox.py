"""Mailbox: bounded queue, backpressure, request/reply, and survival across restarts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import anyio
import pytest
from anyio.abc import TaskStatus
from trio.testing import MockClock

from actors.base import Actor, ActorState
from actors.mailbox import ActorCrashed, Mailbox, MailboxClosed, MailboxFull, Reply
from actors.supervisor import RestartPolicy, Supervisor
from tests.support.waiting import eventually


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


def mock_clock_backend() -> object:
    return pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-mockclock")


@dataclass
class Double:
    value: int
    reply: Reply[int]


@dataclass
class Note:
    text: str


async def answer_doubles(mailbox: Mailbox[Double]) -> None:
    async for request in mailbox:
        if request.value < 0:
            request.reply.fail(ValueError(f"negative: {request.value}"))
        else:
            request.reply.set(request.value * 2)


async def test_send_nowait_raises_at_capacity_and_depth_counts_waiting() -> None:
    with Mailbox[int](2) as mailbox:
        assert mailbox.capacity == 2
        assert mailbox.depth() == 0
        mailbox.send_nowait(1)
        mailbox.send_nowait(2)
        assert mailbox.depth() == 2
        with pytest.raises(MailboxFull):
            mailbox.send_nowait(3)
        assert await mailbox.receive() == 1
        assert mailbox.depth() == 1


async def test_send_waits_for_space() -> None:
    with Mailbox[int](1) as mailbox:
        mailbox.send_nowait(1)
        delivered = anyio.Event()

        async def send_second() -> None:
            await mailbox.send(2)
            delivered.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_second)
            await anyio.wait_all_tasks_blocked()
            assert not delivered.is_set()
            assert mailbox.depth() == 1
            assert await mailbox.receive() == 1
            await delivered.wait()
        assert mailbox.depth() == 1
        assert await mailbox.receive() == 2


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Mailbox[int](0)


async def test_call_round_trip() -> None:
    with Mailbox[Double](4) as mailbox:
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_doubles, mailbox)
            results = [await mailbox.call(partial(Double, n), timeout=5) for n in range(3)]
            tg.cancel_scope.cancel()
        assert results == [0, 2, 4]


async def test_reply_fail_raises_in_caller() -> None:
    with Mailbox[Double](4) as mailbox:
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_doubles, mailbox)
            with pytest.raises(ValueError, match="negative: -1"):
                await mailbox.call(lambda r: Double(-1, r), timeout=5)
            assert await mailbox.call(lambda r: Double(5, r), timeout=5) == 10
            tg.cancel_scope.cancel()


async def test_reply_resolves_once() -> None:
    reply: Reply[int] = Reply()
    reply.set(1)
    assert reply.done
    with pytest.raises(RuntimeError, match="already resolved"):
        reply.fail(ValueError())
    assert await reply.wait() == 1


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_call_times_out_when_nobody_answers() -> None:
    with Mailbox[Double](4) as mailbox:
        started = anyio.current_time()
        with pytest.raises(TimeoutError):
            await mailbox.call(lambda r: Double(1, r), timeout=3)
        assert anyio.current_time() - started == pytest.approx(3)
        assert mailbox.depth() == 1


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_call_times_out_while_waiting_for_space() -> None:
    with Mailbox[Double](1) as mailbox:
        mailbox.send_nowait(Double(0, Reply()))
        with pytest.raises(TimeoutError):
            await mailbox.call(lambda r: Double(1, r), timeout=2)
        assert mailbox.depth() == 1


async def test_close_answers_queued_requests_and_ends_iteration() -> None:
    mailbox = Mailbox[Double](4)
    outcome: list[BaseException] = []

    async def ask() -> None:
        try:
            await mailbox.call(lambda r: Double(1, r), timeout=60)
        except MailboxClosed as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await eventually(lambda: mailbox.depth() == 1, within=5, poll=0.001)
        mailbox.close()
    assert len(outcome) == 1
    with pytest.raises(MailboxClosed):
        mailbox.send_nowait(Double(2, Reply()))
    with pytest.raises(MailboxClosed):
        await mailbox.send(Double(2, Reply()))
    assert [message async for message in mailbox] == []


class Scribe(Actor):
    """Writes notes down; the note "crash" kills it. Restarts forget nothing queued."""

    name = "scribe"

    def __init__(self) -> None:
        self.mailbox = Mailbox[Note | Double](8)
        self.written: list[str] = []
        self.runs = 0

    def mailbox_depth(self) -> int:
        return self.mailbox.depth()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        task_status.started()
        await self.mailbox.serve(self._handle)

    async def _handle(self, message: Note | Double) -> None:
        if isinstance(message, Double):
            if message.value == 13:
                raise RuntimeError("unlucky")
            if message.value == 99:
                await anyio.sleep_forever()
            message.reply.set(message.value * 2)
        elif message.text == "crash":
            raise RuntimeError("crash requested")
        else:
            self.written.append(message.text)


async def test_messages_survive_an_actor_restart() -> None:
    scribe = Scribe()
    policy = RestartPolicy(backoff_initial=0.01, jitter=0)
    supervisor = Supervisor("root", [scribe], policy=policy)
    with scribe.mailbox:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            # Queued in one go, so "after" is waiting in the mailbox when the actor dies.
            for text in ("before", "crash", "after", "later"):
                scribe.mailbox.send_nowait(Note(text))
            await eventually(lambda: len(scribe.written) == 3, within=5, poll=0.001)
            assert scribe.written == ["before", "after", "later"]
            assert scribe.runs == 2
            (status,) = supervisor.statuses()
            assert status.state is ActorState.RUNNING
            assert status.restarts == 1
            assert status.mailbox_depth == 0
            await supervisor.stop()


async def test_request_in_flight_when_actor_crashes_fails_fast() -> None:
    scribe = Scribe()
    supervisor = Supervisor("root", [scribe], policy=RestartPolicy(backoff_initial=0.01))
    with scribe.mailbox:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            with pytest.raises(ActorCrashed, match="unlucky") as crashed:
                await scribe.mailbox.call(lambda r: Double(13, r), timeout=60)
            assert isinstance(crashed.value.__cause__, RuntimeError)
            assert await scribe.mailbox.call(lambda r: Double(4, r), timeout=5) == 8
            assert scribe.runs == 2
            await supervisor.stop()


async def test_request_in_flight_when_actor_is_stopped_fails_fast() -> None:
    scribe = Scribe()
    supervisor = Supervisor("root", [scribe])
    outcome: list[BaseException] = []

    async def ask_forever() -> None:
        try:
            await scribe.mailbox.call(lambda r: Double(99, r), timeout=60)
        except ActorCrashed as exc:
            outcome.append(exc)

    with scribe.mailbox:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            tg.start_soon(ask_forever)
            await anyio.wait_all_tasks_blocked()
            await supervisor.stop()
        assert len(outcome) == 1
        assert isinstance(outcome[0].__cause__, anyio.get_cancelled_exc_class())
