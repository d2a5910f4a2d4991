"""Health actor: probes dependencies and downstream services on an interval, caches the verdicts.

Requests never probe: `/health/*` answer from `checks()` and `ready`, and the service
registry from `services()`, all plain reads of the actor's state. Downstream services
(`SERVICES`) are probed like dependencies but never count for readiness. After each round
the actor runs its heartbeat, if given one (the instance's entry in the cluster registry).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from actors.base import Actor

ProbeFn = Callable[[], Awaitable[str | None]]
"""A probe returns None when healthy, a short reason when degraded, and raises when down."""

RecoveryHook = Callable[[], Awaitable[None]]
Heartbeat = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    check: ProbeFn
    required: bool = True
    on_recovery: RecoveryHook | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: str  # up | down | degraded | unknown
    required: bool
    response_time_ms: float | None = None
    checked_at: float | None = None
    error: str | None = None


class HealthActor(Actor):
    """Runs every probe concurrently each interval, each under a deadline."""

    def __init__(
        self,
        probes: list[Probe],
        *,
        interval: float,
        timeout: float,
        services: list[Probe] | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.name = "health"
        self._probes = probes
        self._services = [dataclasses.replace(p, required=False) for p in services or []]
        self._heartbeat = heartbeat
        self._interval = interval
        self._timeout = timeout
        self._results: dict[str, CheckResult] = {
            p.name: CheckResult(p.name, "unknown", p.required) for p in probes
        }
        self._service_results: dict[str, CheckResult] = {
            p.name: CheckResult(p.name, "unknown", False) for p in self._services
        }
        self._heartbeat_error: str | None = None
        self._draining = False
        self._failed: str | None = None
        self._derived: dict[str, Callable[[], CheckResult]] = {}
        self._probe_runs = 0

    @property
    def ready(self) -> bool:
        if self._draining or self._failed is not None:
            return False
        return all(
            r.status != "down" and r.status != "unknown" for r in self.checks() if r.required
        )

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_draining(self) -> None:
        self._draining = True

    def mark_failed(self, reason: str) -> None:
        """Supervision gave up: not ready until the process is replaced."""
        self._failed = reason

    def is_down(self, name: str) -> bool:
        """Whether the last probe of `name` failed (False before its first answer)."""
        result = self._results.get(name)
        return result is not None and result.status == "down"

    def add_derived_check(self, name: str, derive: Callable[[], CheckResult]) -> None:
        """A check computed from in-process state (e.g. an actor's link), read at request time."""
        self._derived[name] = derive

    def checks(self) -> list[CheckResult]:
        derived = [derive() for derive in self._derived.values()]
        return [*self._results.values(), *derived]

    def services(self) -> list[CheckResult]:
        """The downstream services' last probes, in configuration order."""
        return list(self._service_results.values())

    def details(self) -> Mapping[str, object]:
        return {
            "probe_runs": self._probe_runs,
            "ready": self.ready,
            "heartbeat_error": self._heartbeat_error,
        }

    async def probe_once(self) -> None:
        async with anyio.create_task_group() as tg:
            for probe in self._probes:
                tg.start_soon(self._run_probe, probe, self._results)
            for probe in self._services:
                tg.start_soon(self._run_probe, probe, self._service_results)
        self._probe_runs += 1
        if self._heartbeat is not None:
            await self._beat(self._heartbeat)

    async def _beat(self, heartbeat: Heartbeat) -> None:
        try:
            with anyio.fail_after(self._timeout):
                await heartbeat()
        except Exception as exc:
            self._heartbeat_error = _short(exc)
        else:
            self._heartbeat_error = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self.probe_once()
        task_status.started()
        while True:
            await anyio.sleep(self._interval)
            await self.probe_once()

    async def _run_probe(self, probe: Probe, results: dict[str, CheckResult]) -> None:
        previous = results[probe.name].status
        started = anyio.current_time()
        status, error = "up", None
        try:
            with anyio.fail_after(self._timeout):
                reason = await probe.check()
            if reason is not None:
                status, error = "degraded", reason
        except TimeoutError:
            status, error = "down", f"no answer within {self._timeout:g}s"
        except Exception as exc:
            status, error = "down", _short(exc)
        elapsed_ms = (anyio.current_time() - started) * 1000
        results[probe.name] = CheckResult(
            probe.name, status, probe.required, round(elapsed_ms, 3), time.time(), error
        )
        if previous == "down" and status != "down" and probe.on_recovery is not None:
            with anyio.move_on_after(self._timeout):
                await probe.on_recovery()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
