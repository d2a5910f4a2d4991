"""OTP-style supervisor: starts actors in order, restarts crashed ones, escalates crash loops."""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors.base import Actor, ActorState, ActorStatus


class Strategy(enum.StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 5
    within_seconds: float = 30.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.within_seconds <= 0:
            raise ValueError("max_restarts must be >= 0 and within_seconds > 0")
        if not 0 <= self.backoff_initial <= self.backoff_max:
            raise ValueError("need 0 <= backoff_initial <= backoff_max")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def backoff(self, attempt: int) -> float:
        """Delay before restart number `attempt` (0-based) of a child within the window."""
        base = min(self.backoff_initial * 2.0**attempt, self.backoff_max)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


class SupervisorEscalated(Exception):
    """A supervisor exceeded its restart intensity and gave up."""

    def __init__(self, supervisor: str, child: str, last_error: str | None) -> None:
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} restarted too often"
            f" (last error: {last_error})"
        )
        self.supervisor = supervisor
        self.child = child
        self.last_error = last_error


@dataclass(eq=False, slots=True)
class _Child:
    actor: Actor
    state: ActorState = ActorState.STOPPED
    restarts: int = 0
    last_error: str | None = None
    recent_crashes: deque[float] = field(default_factory=deque)
    generation: int = 0
    scope: anyio.CancelScope | None = None
    exited: anyio.Event | None = None
    stopping: bool = False

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.is_set()


@dataclass(frozen=True, slots=True)
class _Exited:
    child: _Child
    generation: int
    error: Exception | None


class _StopRequested:
    pass


class _StartWatch:
    """The task_status handed to a child: notes its start and shields it from then on."""

    def __init__(self, child: _Child, outer: anyio.abc.TaskStatus[Exception | None]) -> None:
        self._child = child
        self._outer = outer
        self.started_ok = False

    def started(self, value: object = None) -> None:
        self.started_ok = True
        self._child.state = ActorState.RUNNING
        if self._child.scope is not None:
            # From now on only this supervisor stops the child, in order (see _stop_child).
            self._child.scope.shield = True
        self._outer.started(None)


_Event = _Exited | _StopRequested


class Supervisor(Actor):
    """Runs its children, restarting them per strategy and policy; is itself an Actor."""

    def __init__(
        self,
        name: str,
        children: Sequence[Actor],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        policy: RestartPolicy = RestartPolicy(),
        on_escalate: Callable[[SupervisorEscalated], None] | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        names = [actor.name for actor in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.name = name
        self.strategy = strategy
        self.policy = policy
        self.stop_timeout = stop_timeout
        self._on_escalate = on_escalate
        self._children = [_Child(actor) for actor in children]
        self._by_name = {child.actor.name: child for child in self._children}
        self._escalated = False
        self.escalations = 0
        """How many times this supervisor gave up, over its whole life."""
        self._restart_times: deque[float] = deque()
        self._tg: anyio.abc.TaskGroup | None = None
        self._events: MemoryObjectSendStream[_Event] | None = None
        self._stop_requested = anyio.Event()
        self._stop_deadline: float | None = None
        self._finished = anyio.Event()

    @property
    def escalated(self) -> bool:
        return self._escalated

    def child(self, name: str) -> Actor:
        return self._by_name[name].actor

    def statuses(self) -> list[ActorStatus]:
        return [
            ActorStatus(
                name=child.actor.name,
                state=child.state,
                restarts=child.restarts,
                mailbox_depth=child.actor.mailbox_depth(),
                last_error=child.last_error,
                details=child.actor.details(),
            )
            for child in self._children
        ]

    def details(self) -> Mapping[str, object]:
        return {
            "strategy": str(self.strategy),
            "children": len(self._children),
            "escalated": self._escalated,
        }

    def request_stop(self) -> bool:
        if self._events is None:
            return False
        self._stop_requested.set()
        self._events.send_nowait(_StopRequested())
        for child in self._children:
            if child.state is ActorState.STARTING and child.scope is not None:
                child.scope.cancel()
        return True

    async def stop(self, *, deadline: float | None = None) -> None:
        """Stop the children in reverse start order and wait for run() to return.

        Past `deadline` (on `anyio.current_time()`'s clock) children still running are
        cancelled without waiting for them to wind down.
        """
        self._stop_deadline = deadline
        if self.request_stop():
            await self._finished.wait()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self._escalated = False
        self._restart_times.clear()
        self._stop_requested = anyio.Event()
        self._stop_deadline = None
        self._finished = anyio.Event()
        escalation: SupervisorEscalated | None = None
        events_in, events_out = anyio.create_memory_object_stream[_Event](math.inf)
        try:
            with events_in, events_out:
                async with anyio.create_task_group() as tg:
                    self._tg, self._events = tg, events_in
                    try:
                        if await self._start_in_order(self._children):
                            task_status.started()
                            await self._supervise(events_out)
                    except SupervisorEscalated as exc:
                        escalation = exc
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self._stop_all()
        finally:
            self._tg = self._events = None
            self._finished.set()
        if escalation is not None:
            if self._on_escalate is not None:
                self._on_escalate(escalation)
            raise escalation

    async def _supervise(self, events: MemoryObjectReceiveStream[_Event]) -> None:
        async for event in events:
            if isinstance(event, _StopRequested):
                return
            if event.generation != event.child.generation:
                continue  # already stopped and restarted by a one-for-all restart
            delay = self._record_crash(event.child, event.error)
            to_restart = [event.child]
            if self.strategy is Strategy.ONE_FOR_ALL:
                to_restart = self._children
                await self._stop_all()
                for child in self._children:
                    child.state = ActorState.RESTARTING
                    if child is not event.child:
                        child.restarts += 1
            if not await self._backoff(delay) or not await self._start_in_order(to_restart):
                return

    async def _start_in_order(self, children: Sequence[_Child]) -> bool:
        """Start each child once the previous one is up; False if a stop was requested."""
        for child in children:
            if self._stop_requested.is_set():
                return False
            while (error := await self._start(child)) is not None:
                if self._stop_requested.is_set():
                    return False
                if not await self._backoff(self._record_crash(child, error)):
                    return False
        return True

    async def _start(self, child: _Child) -> Exception | None:
        assert self._tg is not None
        child.generation += 1
        child.scope = anyio.CancelScope()
        child.exited = anyio.Event()
        child.stopping = False
        child.state = ActorState.STARTING
        result: Exception | None = await self._tg.start(self._run_child, child, child.generation)
        return result

    async def _run_child(
        self,
        child: _Child,
        generation: int,
        *,
        task_status: anyio.abc.TaskStatus[Exception | None],
    ) -> None:
        assert child.scope is not None
        assert child.exited is not None
        exited = child.exited
        watch = _StartWatch(child, task_status)
        error: Exception | None = None
        try:
            with child.scope:
                await child.actor.run(task_status=watch)
        except Exception as exc:
            error = exc
        finally:
            exited.set()
        if not watch.started_ok:
            task_status.started(error or RuntimeError(f"{child.actor.name} exited before starting"))
        elif child.stopping:
            if error is not None:
                child.last_error = repr(error)
        elif self._events is not None:
            self._events.send_nowait(_Exited(child, generation, error))

    def _record_crash(self, child: _Child, error: Exception | None) -> float:
        """Count a crash; return the backoff before restarting, or escalate."""
        now = anyio.current_time()
        child.state = ActorState.RESTARTING
        if error is not None:
            child.last_error = repr(error)
        window_start = now - self.policy.within_seconds
        for times in (self._restart_times, child.recent_crashes):
            while times and times[0] < window_start:
                times.popleft()
        attempt = len(child.recent_crashes)
        self._restart_times.append(now)
        child.recent_crashes.append(now)
        if len(self._restart_times) > self.policy.max_restarts:
            self._escalated = True
            self.escalations += 1
            child.state = ActorState.FAILED
            raise SupervisorEscalated(self.name, child.actor.name, child.last_error)
        child.restarts += 1
        return self.policy.backoff(attempt)

    async def _backoff(self, delay: float) -> bool:
        """Sleep before a restart; False if a stop was requested meanwhile."""
        with anyio.move_on_after(delay):
            await self._stop_requested.wait()
        return not self._stop_requested.is_set()

    def _stop_wait(self) -> float:
        if self._stop_deadline is None:
            return self.stop_timeout
        return max(0.0, min(self.stop_timeout, self._stop_deadline - anyio.current_time()))

    async def _stop_all(self) -> None:
        for child in reversed(self._children):
            await self._stop_child(child)

    async def _stop_child(self, child: _Child) -> None:
        if child.alive:
            assert child.scope is not None
            assert child.exited is not None
            child.stopping = True
            child.state = ActorState.STOPPING
            if child.actor.request_stop():
                with anyio.move_on_after(self._stop_wait()):
                    await child.exited.wait()
            child.scope.cancel()
            with anyio.move_on_after(self._stop_wait()):
                await child.exited.wait()
            if child.alive:
                return  # it shields itself from cancellation; the task group will wait for it
        if child.state is not ActorState.FAILED:
            child.state = ActorState.STOPPED
