"""Runs an open-loop simulation across generator processes and merges their reports.

Sessions are dealt round-robin to processes so each holds at most ``max_sockets_per_process``
sockets (under the 20,000 descriptor limit, with room to spare) and offers at most
``max_rate_per_process`` requests/s.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.opensim.mix import MixEntry, MixPicker, SessionCredentials
from benchmarks.opensim.stats import RunStats
from benchmarks.opensim.validity import ValidityRule, judge_validity
from benchmarks.opensim.worker import WorkerPlan, worker_main


class GeneratorError(RuntimeError):
    """A generator process failed to start or to report."""


@dataclass(frozen=True)
class OpenLoopConfig:
    """One open-loop run: ``sessions`` ramped up over ``ramp_s``, then measured for ``steady_s``."""

    host: str
    port: int
    sessions: int
    ramp_s: float = 15.0
    steady_s: float = 60.0
    interval_s: float = 2.0  # mean think time between a session's requests
    timeout_s: float = 10.0
    drain_s: float | None = None  # after the window; default timeout_s + 1
    mix: tuple[MixEntry, ...] = (MixEntry(1.0, "GET", "/json", auth=False),)
    max_sockets_per_process: int = 8_000
    max_rate_per_process: float = 4_000.0
    processes: int | None = None
    seed: int = 1
    rule: ValidityRule = field(default_factory=ValidityRule)

    @property
    def offered_rps_nominal(self) -> float:
        return self.sessions / self.interval_s


def plan_process_count(sessions: int, interval_s: float, max_sockets: int, max_rate: float) -> int:
    """Generator processes needed to stay under the socket and rate budgets per process."""
    by_sockets = math.ceil(sessions / max_sockets)
    by_rate = math.ceil((sessions / interval_s) / max_rate)
    return max(1, by_sockets, by_rate)


@dataclass
class OpenLoopResult:
    """Merged outcome of one open-loop run."""

    sessions: int
    processes: int
    ramp_s: float
    steady_s: float
    interval_s: float
    stats: RunStats
    worker_cpu: list[float]
    late_start_s: list[float]
    steady_start_wall: float
    steady_end_wall: float
    invalid_reasons: list[str]

    @property
    def valid(self) -> bool:
        return not self.invalid_reasons

    @property
    def offered_rps(self) -> float:
        return self.stats.intended / self.steady_s

    @property
    def achieved_rps(self) -> float:
        return self.stats.sent_in_window / self.steady_s

    @property
    def completed_rps(self) -> float:
        return self.stats.completed / self.steady_s

    def summary(self) -> dict[str, Any]:
        """JSON-friendly figures."""
        s = self.stats
        return {
            "sessions": self.sessions,
            "processes": self.processes,
            "ramp_s": self.ramp_s,
            "steady_s": self.steady_s,
            "interval_s": self.interval_s,
            "offered_rps": round(self.offered_rps, 1),
            "achieved_rps": round(self.achieved_rps, 1),
            "completed_rps": round(self.completed_rps, 1),
            "requests_in_window": s.completed,
            "requests_total": s.requests_total,
            "unsent": s.unsent,
            "errors": s.error_total,
            "errors_by_kind": dict(s.errors),
            "first_error": s.first_error,
            "statuses": dict(s.statuses),
            "per_entry": {k: dict(v) for k, v in s.per_entry.items()},
            "latency": s.latency.summary_ms(),
            "service": s.service.summary_ms(),
            "lateness": s.lateness.summary_ms(),
            "generator_lag": s.lag.summary_ms(),
            "generator_cpu": [round(c, 3) for c in self.worker_cpu],
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
        }


def _deal(config: OpenLoopConfig, creds: list[SessionCredentials] | None) -> list[WorkerPlan]:
    procs = config.processes or plan_process_count(
        config.sessions,
        config.interval_s,
        config.max_sockets_per_process,
        config.max_rate_per_process,
    )
    needs_refresh = MixPicker(config.mix).needs_refresh_tokens
    if needs_refresh and (not creds or len(creds) < config.sessions):
        raise ValueError(
            "a mix with refresh entries needs one seeded session per virtual session "
            f"({config.sessions}), got {len(creds or [])}"
        )
    drain = config.drain_s if config.drain_s is not None else config.timeout_s + 1.0
    plans = []
    for k in range(procs):
        indexes = tuple(range(k, config.sessions, procs))
        own = (
            tuple(
                SessionCredentials(
                    c.access_token,
                    c.refresh_token,
                    c.user_id,
                    c.pools,  # shared tuples: pickled once per generator process
                    {name: list(queue) for name, queue in c.queues.items()},
                )
                for c in (creds[i % len(creds)] for i in indexes)
            )
            if creds
            else ()
        )
        plans.append(
            WorkerPlan(
                index=k,
                host=config.host,
                port=config.port,
                total_sessions=config.sessions,
                session_indexes=indexes,
                ramp_s=config.ramp_s,
                steady_s=config.steady_s,
                drain_s=drain,
                interval_s=config.interval_s,
                timeout_s=config.timeout_s,
                mix=config.mix,
                seed=config.seed * 1_000_003 + k,
                credentials=own,
            )
        )
    return plans


def run_open_loop(
    config: OpenLoopConfig, credentials: list[SessionCredentials] | None = None
) -> OpenLoopResult:
    """Run the simulation to completion (blocking) and return merged, judged figures."""
    plans = _deal(config, credentials)
    ctx = mp.get_context("spawn")
    messages: Any = ctx.Queue()
    go = ctx.Event()
    t0 = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=worker_main, args=(plan, messages, go, t0), daemon=True)
        for plan in plans
    ]
    results: dict[int, dict[str, Any]] = {}
    try:
        for p in procs:
            p.start()
        ready = 0
        deadline = time.monotonic() + 60
        while ready < len(procs):
            kind, index, payload = _next_message(messages, deadline, procs)
            if kind != "ready":
                raise GeneratorError(f"generator {index} failed to start: {payload}")
            ready += 1
        t0_wall = time.time() + 0.3
        t0.value = t0_wall
        go.set()
        drain = plans[0].drain_s
        deadline = time.monotonic() + 0.3 + config.ramp_s + config.steady_s + drain + 60
        while len(results) < len(procs):
            kind, index, payload = _next_message(messages, deadline, procs)
            if kind != "result":
                raise GeneratorError(f"generator {index} failed: {payload}")
            results[index] = payload
    finally:
        for p in procs:
            p.join(timeout=5 if results else 0.1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)
        with contextlib.suppress(Exception):
            messages.close()
    merged = RunStats()
    cpu: list[float] = []
    late: list[float] = []
    for index in sorted(results):
        report = results[index]
        merged.merge(RunStats.from_dict(report["stats"]))
        cpu.append(float(report["cpu_fraction"]))
        late.append(float(report["late_start_s"]))
    steady_s = config.steady_s
    offered = merged.intended / steady_s
    achieved = merged.sent_in_window / steady_s
    reasons = judge_validity(
        offered_rps=offered,
        achieved_rps=achieved,
        lag_p99_ms=merged.lag.percentile_us(99) / 1000,
        service_p99_ms=merged.service.percentile_us(99) / 1000,
        worker_cpu=cpu,
        late_start_s=late,
        rule=config.rule,
    )
    return OpenLoopResult(
        sessions=config.sessions,
        processes=len(plans),
        ramp_s=config.ramp_s,
        steady_s=steady_s,
        interval_s=config.interval_s,
        stats=merged,
        worker_cpu=cpu,
        late_start_s=late,
        steady_start_wall=t0_wall + config.ramp_s,
        steady_end_wall=t0_wall + config.ramp_s + steady_s,
        invalid_reasons=reasons,
    )


def _next_message(messages: Any, deadline: float, procs: list[Any]) -> tuple[str, int, Any]:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GeneratorError("generator processes did not report in time")
        try:
            msg: tuple[str, int, Any] = messages.get(timeout=min(1.0, remaining))
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise GeneratorError(f"generator process exited with {dead[0].exitcode}") from None
            continue
        return msg
