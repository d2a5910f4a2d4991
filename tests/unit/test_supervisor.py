"""Supervisor: ordered start/stop, restart strategies, backoff, intensity and escalation."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskStatus
from trio.testing import MockClock

from actors.base import Actor, ActorState
from actors.supervisor import RestartPolicy, Strategy, Supervisor, SupervisorEscalated
from tests.support.waiting import eventually

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01, jitter=0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    return request.param


def mock_clock_backend() -> object:
    return pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-mockclock")


class Worker(Actor):
    """Logs its life to a shared list; crashes when told to, or on every run."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        always_crash: bool = False,
        failed_starts: int = 0,
        graceful: bool = False,
        ignores_stop_requests: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.always_crash = always_crash
        self.failed_starts = failed_starts
        self.graceful = graceful
        self.ignores_stop_requests = ignores_stop_requests
        self.runs = 0
        self.start_times: list[float] = []
        self.stop_requests = 0
        self._wake = anyio.Event()
        self._action = "crash"

    def details(self) -> dict[str, object]:
        return {"runs": self.runs}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        self.start_times.append(anyio.current_time())
        self._wake = anyio.Event()
        await anyio.lowlevel.checkpoint()  # a slow start: the next sibling must wait for it
        if self.failed_starts:
            self.failed_starts -= 1
            self.log.append(f"failed start {self.name}")
            raise RuntimeError(f"{self.name} could not start")
        self.log.append(f"start {self.name}")
        task_status.started()
        if self.always_crash:
            self.log.append(f"crash {self.name}")
            raise RuntimeError(f"{self.name} always crashes")
        try:
            await self._wake.wait()
        except anyio.get_cancelled_exc_class():
            self.log.append(f"stop {self.name}")
            raise
        if self._action == "exit":
            self.log.append(f"exit {self.name}")
            return
        self.log.append(f"crash {self.name}")
        raise RuntimeError(f"{self.name} boom {self.runs}")

    def crash(self) -> None:
        self._action = "crash"
        self._wake.set()

    def exit(self) -> None:
        self._action = "exit"
        self._wake.set()

    def request_stop(self) -> bool:
        self.stop_requests += 1
        if self.graceful and not self.ignores_stop_requests:
            self._action = "exit"
            self._wake.set()
        return self.graceful


def running(supervisor: Supervisor, worker: Worker, runs: int) -> Callable[[], bool]:
    """True once `worker` is up for its `runs`-th run."""
    return lambda: worker.runs == runs and states(supervisor)[worker.name] is ActorState.RUNNING


def states(supervisor: Supervisor) -> dict[str, ActorState]:
    return {status.name: status.state for status in supervisor.statuses()}


def workers(log: list[str], *names: str) -> list[Worker]:
    return [Worker(name, log) for name in names]


async def test_children_start_in_order_and_stop_in_reverse() -> None:
    log: list[str] = []
    a, b, c = workers(log, "a", "b", "c")
    supervisor = Supervisor("root", [a, b, c])
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        assert log == ["start a", "start b", "start c"]
        assert states(supervisor) == dict.fromkeys("abc", ActorState.RUNNING)
        assert supervisor.child("b") is b
        await supervisor.stop()
    assert log[3:] == ["stop c", "stop b", "stop a"]
    assert states(supervisor) == dict.fromkeys("abc", ActorState.STOPPED)


async def test_statuses_report_counts_errors_and_details() -> None:
    log: list[str] = []
    a, b = workers(log, "a", "b")
    supervisor = Supervisor("root", [a, b], policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        b.crash()
        await eventually(running(supervisor, b, 2), within=5, poll=0.001)
        first, second = supervisor.statuses()
        assert (first.name, first.restarts, first.last_error) == ("a", 0, None)
        assert (second.name, second.restarts, second.mailbox_depth) == ("b", 1, 0)
        assert second.last_error == "RuntimeError('b boom 1')"
        assert second.details == {"runs": 2}
        await supervisor.stop()


async def test_one_for_one_restarts_only_the_crashed_child() -> None:
    log: list[str] = []
    a, b, c = workers(log, "a", "b", "c")
    supervisor = Supervisor("root", [a, b, c], policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        for runs in (2, 3):
            b.crash()
            await eventually(running(supervisor, b, runs), within=5, poll=0.001)
        assert (a.runs, c.runs) == (1, 1)
        assert [s.restarts for s in supervisor.statuses()] == [0, 2, 0]
        assert states(supervisor) == dict.fromkeys("abc", ActorState.RUNNING)
        assert log[3:] == ["crash b", "start b", "crash b", "start b"]
        await supervisor.stop()


async def test_normal_exit_of_a_child_is_restarted() -> None:
    log: list[str] = []
    (a,) = workers(log, "a")
    supervisor = Supervisor("root", [a], policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        a.exit()
        await eventually(running(supervisor, a, 2), within=5, poll=0.001)
        assert log == ["start a", "exit a", "start a"]
        await supervisor.stop()


async def test_one_for_all_stops_the_rest_in_reverse_then_restarts_all_in_order() -> None:
    log: list[str] = []
    a, b, c = workers(log, "a", "b", "c")
    supervisor = Supervisor("root", [a, b, c], strategy=Strategy.ONE_FOR_ALL, policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        b.crash()
        await eventually(running(supervisor, c, 2), within=5, poll=0.001)
        assert log[3:] == ["crash b", "stop c", "stop a", "start a", "start b", "start c"]
        assert [s.restarts for s in supervisor.statuses()] == [1, 1, 1]
        assert supervisor.statuses()[1].last_error == "RuntimeError('b boom 1')"
        await supervisor.stop()


async def test_child_that_fails_to_start_is_retried_before_later_children_start() -> None:
    log: list[str] = []
    a, b = workers(log, "a", "b")
    a.failed_starts = 2
    supervisor = Supervisor("root", [a, b], policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        assert log == ["failed start a", "failed start a", "start a", "start b"]
        assert [s.restarts for s in supervisor.statuses()] == [2, 0]
        await supervisor.stop()


async def test_exceeding_intensity_escalates() -> None:
    log: list[str] = []
    good, bad, tail = workers(log, "good", "bad", "tail")
    bad.always_crash = True
    escalations: list[SupervisorEscalated] = []
    policy = RestartPolicy(max_restarts=2, within_seconds=60, backoff_initial=0.001, jitter=0)
    supervisor = Supervisor(
        "root", [good, bad, tail], policy=policy, on_escalate=escalations.append
    )
    with pytest.raises(SupervisorEscalated) as raised:
        await supervisor.run()
    assert escalations == [raised.value]
    assert (raised.value.supervisor, raised.value.child) == ("root", "bad")
    assert raised.value.last_error == "RuntimeError('bad always crashes')"
    assert supervisor.escalated
    assert bad.runs == 3
    assert states(supervisor) == {
        "good": ActorState.STOPPED,
        "bad": ActorState.FAILED,
        "tail": ActorState.STOPPED,
    }
    assert log[-2:] == ["stop tail", "stop good"]
    assert [s.restarts for s in supervisor.statuses()] == [0, 2, 0]
    await supervisor.stop()  # already finished: returns at once


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    log: list[str] = []
    (bad,) = workers(log, "bad")
    bad.always_crash = True
    policy = RestartPolicy(
        max_restarts=100, within_seconds=1000, backoff_initial=1, backoff_max=8, jitter=0
    )
    supervisor = Supervisor("root", [bad], policy=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        await eventually(lambda: bad.runs == 6, within=100, poll=0.25)
        await supervisor.stop()
    gaps = [later - earlier for earlier, later in pairwise(bad.start_times)]
    assert gaps == pytest.approx([1, 2, 4, 8, 8])


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_backoff_jitter_stays_within_bounds() -> None:
    log: list[str] = []
    (bad,) = workers(log, "bad")
    bad.always_crash = True
    policy = RestartPolicy(
        max_restarts=100, within_seconds=1000, backoff_initial=4, backoff_max=4, jitter=0.25
    )
    supervisor = Supervisor("root", [bad], policy=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        await eventually(lambda: bad.runs == 20, within=1000, poll=0.25)
        await supervisor.stop()
    gaps = [later - earlier for earlier, later in pairwise(bad.start_times)]
    assert all(3 - 1e-9 <= gap <= 5 + 1e-9 for gap in gaps)
    assert len({round(gap, 6) for gap in gaps}) > 1


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_intensity_window_slides() -> None:
    log: list[str] = []
    (flaky,) = workers(log, "flaky")
    escalations: list[SupervisorEscalated] = []
    policy = RestartPolicy(max_restarts=2, within_seconds=10, backoff_initial=0.5, jitter=0)
    supervisor = Supervisor("root", [flaky], policy=policy, on_escalate=escalations.append)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        for runs in range(2, 8):
            flaky.crash()  # two restarts per 10 s window at most: never over the limit
            await eventually(running(supervisor, flaky, runs), within=100, poll=0.25)
            await anyio.sleep(6)
        assert not supervisor.escalated
        assert escalations == []
        assert supervisor.statuses()[0].restarts == 6
        assert states(supervisor) == {"flaky": ActorState.RUNNING}
        await supervisor.stop()


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_crashes_bunched_inside_the_window_escalate() -> None:
    log: list[str] = []
    (flaky,) = workers(log, "flaky")
    policy = RestartPolicy(max_restarts=2, within_seconds=10, backoff_initial=0.5, jitter=0)
    supervisor = Supervisor("root", [flaky], policy=policy)

    async def crash_three_times_within_nine_seconds() -> None:
        for runs in (1, 2):
            await eventually(running(supervisor, flaky, runs), within=100, poll=0.25)
            await anyio.sleep(4)
            flaky.crash()
        await eventually(lambda: flaky.runs == 3, within=100, poll=0.25)
        await anyio.sleep(1)
        flaky.crash()

    with pytest.RaisesGroup(SupervisorEscalated):
        async with anyio.create_task_group() as tg:
            tg.start_soon(crash_three_times_within_nine_seconds)
            await supervisor.run()
    assert supervisor.escalated


async def test_nested_escalation_is_a_crash_of_the_parents_child() -> None:
    log: list[str] = []
    x, y = workers(log, "x", "y")
    inner_escalations: list[SupervisorEscalated] = []
    inner = Supervisor(
        "inner",
        [x],
        policy=RestartPolicy(max_restarts=0, backoff_initial=0.001),
        on_escalate=inner_escalations.append,
    )
    parent = Supervisor("root", [inner, y], policy=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(parent.run)
        assert log == ["start x", "start y"]
        x.crash()
        await eventually(
            lambda: x.runs == 2 and states(parent)["inner"] is ActorState.RUNNING,
            within=5,
            poll=0.001,
        )
        assert len(inner_escalations) == 1
        assert not inner.escalated  # re-run by the parent: a fresh start
        inner_status, y_status = parent.statuses()
        assert inner_status.restarts == 1
        assert inner_status.last_error is not None
        assert inner_status.last_error.startswith("SupervisorEscalated(")
        assert inner_status.details == {
            "strategy": "one_for_one",
            "children": 1,
            "escalated": False,
        }
        assert y_status.restarts == 0
        assert y.runs == 1
        assert states(inner) == {"x": ActorState.RUNNING}
        await parent.stop()
    assert log[-3:] == ["start x", "stop y", "stop x"]
    assert states(inner) == {"x": ActorState.STOPPED}


async def test_cancelling_the_enclosing_task_group_stops_everything_in_reverse() -> None:
    log: list[str] = []
    a, b, c = workers(log, "a", "b", "c")
    inner = Supervisor("inner", [b])
    supervisor = Supervisor("root", [a, inner, c])
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        tg.cancel_scope.cancel()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert states(supervisor) == dict.fromkeys(["a", "inner", "c"], ActorState.STOPPED)
    assert states(inner) == {"b": ActorState.STOPPED}


async def test_cancelling_during_startup_stops_the_started_children() -> None:
    log: list[str] = []
    a, b = workers(log, "a", "b")
    b.failed_starts = 1_000_000
    supervisor = Supervisor("root", [a, b], policy=FAST)
    async with anyio.create_task_group() as tg:
        tg.start_soon(supervisor.run)
        await eventually(lambda: b.runs >= 3, within=5, poll=0.001)
        tg.cancel_scope.cancel()
    assert log[0] == "start a"
    assert log[-1] == "stop a"
    assert states(supervisor)["a"] is ActorState.STOPPED


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_graceful_stop_is_awaited_and_a_stubborn_child_is_cancelled_after_timeout() -> None:
    log: list[str] = []
    polite = Worker("polite", log, graceful=True)
    stubborn = Worker("stubborn", log, graceful=True, ignores_stop_requests=True)
    plain = Worker("plain", log)
    supervisor = Supervisor("root", [polite, stubborn, plain], stop_timeout=3)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        began = anyio.current_time()
        await supervisor.stop()
        took = anyio.current_time() - began
    assert took == pytest.approx(3)
    assert log[3:] == ["stop plain", "stop stubborn", "exit polite"]
    assert (polite.stop_requests, stubborn.stop_requests, plain.stop_requests) == (1, 1, 1)
    assert states(supervisor) == dict.fromkeys(["polite", "stubborn", "plain"], ActorState.STOPPED)


@pytest.mark.parametrize("anyio_backend", [mock_clock_backend()])
async def test_stop_during_backoff_does_not_wait_for_the_restart() -> None:
    log: list[str] = []
    (bad,) = workers(log, "bad")
    policy = RestartPolicy(backoff_initial=60, backoff_max=60, jitter=0)
    supervisor = Supervisor("root", [bad], policy=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        bad.crash()
        await eventually(
            lambda: states(supervisor)["bad"] is ActorState.RESTARTING, within=5, poll=0.001
        )
        began = anyio.current_time()
        await supervisor.stop()
        assert anyio.current_time() - began < 1
    assert bad.runs == 1
    assert states(supervisor) == {"bad": ActorState.STOPPED}


def test_child_names_must_be_unique() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="unique"):
        Supervisor("root", workers(log, "a", "a"))


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="backoff"):
        RestartPolicy(backoff_initial=10, backoff_max=1)
    with pytest.raises(ValueError, match="jitter"):
        RestartPolicy(jitter=1.5)
