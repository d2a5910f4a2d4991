"""One generator process: runs its share of the sessions on uvloop and reports its statistics.

The parent starts the process, waits for its ``ready`` message, then publishes a common wall-clock
start time; every process maps it onto its own loop clock so the ramp interleaves across processes.
"""

from __future__ import annotations

import asyncio
import random
import resource
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from benchmarks.opensim.mix import MixEntry, MixPicker, SessionCredentials
from benchmarks.opensim.session import Schedule, Target, clock, run_session
from benchmarks.opensim.stats import RunStats
from benchmarks.tools import raise_nofile_limit


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one generator process needs (picklable)."""

    index: int
    host: str
    port: int
    total_sessions: int
    session_indexes: tuple[int, ...]
    ramp_s: float
    steady_s: float
    drain_s: float
    interval_s: float
    timeout_s: float
    mix: tuple[MixEntry, ...]
    seed: int
    credentials: tuple[SessionCredentials, ...] = field(default=())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_plan(plan: WorkerPlan, t0_wall: float) -> dict[str, Any]:
    """Run every session of ``plan``; the ramp starts at wall time ``t0_wall``."""
    late_start_s = max(0.0, time.time() - t0_wall)
    t0 = clock() + (t0_wall - time.time())
    schedule = Schedule(
        steady_start=t0 + plan.ramp_s,
        steady_end=t0 + plan.ramp_s + plan.steady_s,
        hard_stop=t0 + plan.ramp_s + plan.steady_s + plan.drain_s,
        interval_s=plan.interval_s,
        timeout_s=plan.timeout_s,
    )
    picker = MixPicker(plan.mix)
    target = Target(plan.host, plan.port, picker, tuple(e.encoded_body() for e in plan.mix))
    stats = RunStats()
    cpu: dict[str, float] = {}

    async def mark(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - clock()))
        cpu[name] = _cpu_seconds()
        cpu[name + "_t"] = clock()

    marks = [
        asyncio.create_task(mark("steady_start", schedule.steady_start)),
        asyncio.create_task(mark("steady_end", schedule.steady_end)),
    ]
    start_cpu = _cpu_seconds()
    rng = random.Random(plan.seed)
    creds = plan.credentials
    tasks = []
    for n, global_index in enumerate(plan.session_indexes):
        session_creds = creds[n] if creds else SessionCredentials()
        start_at = t0 + plan.ramp_s * (global_index / max(1, plan.total_sessions))
        session_rng = random.Random(rng.getrandbits(64))
        tasks.append(
            asyncio.create_task(
                run_session(target, schedule, session_creds, start_at, stats, session_rng)
            )
        )
    await asyncio.gather(*tasks)
    for task in marks:
        task.cancel()
    steady_cpu = cpu.get("steady_end", _cpu_seconds()) - cpu.get("steady_start", start_cpu)
    steady_wall = cpu.get("steady_end_t", clock()) - cpu.get("steady_start_t", t0)
    return {
        "index": plan.index,
        "sessions": len(plan.session_indexes),
        "stats": stats.to_dict(),
        "cpu_steady_s": steady_cpu,
        "wall_steady_s": steady_wall,
        "cpu_fraction": steady_cpu / steady_wall if steady_wall > 0 else 0.0,
        "cpu_total_s": _cpu_seconds() - start_cpu,
        "late_start_s": late_start_s,
    }


def worker_main(
    plan: WorkerPlan,
    messages: Queue[tuple[str, int, Any]],
    go: Event,
    t0_wall: Synchronized[float],
) -> None:
    """Process entry point: get ready, wait for the go signal, run, report on ``messages``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    try:
        import uvloop

        limit = raise_nofile_limit()
        if len(plan.session_indexes) + 64 > limit:
            raise RuntimeError(
                f"worker {plan.index}: {len(plan.session_indexes)} sessions exceed "
                f"the open-file limit {limit}"
            )
        messages.put(("ready", plan.index, None))
        if not go.wait(timeout=120):
            raise RuntimeError("no go signal from the parent")
        result = uvloop.run(run_plan(plan, float(t0_wall.value)))
        messages.put(("result", plan.index, result))
    except BaseException as exc:
        messages.put(("error", plan.index, f"{type(exc).__name__}: {exc}"))
        raise
