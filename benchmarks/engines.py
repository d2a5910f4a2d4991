"""Measurement primitives: a wrk run or an open-loop run with the server's CPU/RSS sampled.

Metric names (usable in ``Check``s):
  wrk:       rps, p50_ms, p90_ms, p99_ms, max_ms, errors, errors_status, errors_socket,
             server_cpu_mean_pct, server_cpu_max_pct, server_rss_mean_mib, server_rss_max_mib
             machine_cpu_mean_pct (whole machine busy CPU, 100 = one core);
             paired runs add ceiling_rps, rounds, ratio_min, ratio_max; the harness adds ratio
  open-loop: sessions, offered_rps, achieved_rps, p50_ms, p90_ms, p99_ms, max_ms, errors,
             lateness_p99_ms, generator_lag_p99_ms, generator_cpu_max, valid,
             server_cpu_mean_pct, server_cpu_max_pct, server_rss_idle_mib, server_rss_steady_mib,
             rss_per_session_kb, rss_growth_pct
  export:    rows, rounds, rps (rows/s), ceiling_rps (COPY rows/s), ratio, ratio_min, ratio_max,
             ttfb_ms (worst round), ttfb_median_ms, copy_ttfb_ms, seconds, copy_seconds,
             rss_growth_mib, requests, errors, and the server's CPU/RSS (``export_bench.py``)
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.opensim.mix import MixEntry, SessionCredentials
from benchmarks.opensim.simulate import OpenLoopConfig, OpenLoopResult, run_open_loop
from benchmarks.sampler import ProcessSampler, ProcessSource, Samples
from benchmarks.wrk import WrkJob, WrkResult, run_wrk


def probe(
    url: str, method: str = "GET", body: bytes | None = None, token: str | None = None
) -> int:
    """Status of one request (0 when the connection fails)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def server_metrics(samples: Samples) -> dict[str, float]:
    """Server CPU/RSS and machine CPU of a sampled window."""
    summary = samples.summary()
    out = {f"server_{k}": v for k, v in summary.items() if not k.startswith("machine")}
    out["machine_cpu_mean_pct"] = summary["machine_cpu_mean_pct"]
    return out


def wrk_metrics(result: WrkResult) -> dict[str, float]:
    """The wrk part of a scenario's metrics."""
    e = result.errors
    return {
        "rps": round(result.rps, 1),
        "requests": result.requests,
        "p50_ms": round(result.latency_p50_ms, 3),
        "p90_ms": round(result.latency_p90_ms, 3),
        "p99_ms": round(result.latency_p99_ms, 3),
        "max_ms": round(result.latency_max_ms, 3),
        "errors": e.total,
        "errors_status": e.status,
        "errors_socket": e.connect + e.read + e.write + e.timeout,
    }


CeilingProbe = Callable[[float], float]


@dataclass(frozen=True)
class PairedRun:
    """A scenario measured in alternation with its ceiling, so both see the same background."""

    metrics: dict[str, float]
    details: dict[str, Any]


def measure_paired(
    job: WrkJob,
    ceiling: CeilingProbe,
    source: ProcessSource,
    *,
    rounds: int,
    warmup_s: float,
    wrk_path: str,
) -> PairedRun:
    """``rounds`` x (ceiling and scenario for d seconds each, in turn first), d = duration/rounds.

    The machine is shared and its background load drifts; alternating short runs exposes the
    scenario and its ceiling to the same drift, so their ratio is far steadier than the ratio of
    two runs minutes apart. Both sides are warmed for ``warmup_s`` first, so that a server
    started for this pair is compared in its steady state, not while its caches fill. ``ratio``
    is the median of the per-round ratios (min/max kept as the noise band); req/s are total
    requests / total time on each side; latency p50 is the median of the rounds, p99 and max
    the worst round.
    """
    chunk = max(1.0, round(job.duration_s / rounds))
    if warmup_s > 0:
        ceiling(warmup_s)
        run_wrk(dataclasses.replace(job, duration_s=warmup_s), wrk_path)
    part = dataclasses.replace(job, duration_s=chunk)
    results: list[WrkResult] = []
    ceiling_rps: list[float] = []
    samples = Samples()
    for round_index in range(rounds):
        # Alternate which side goes first, so that neither always runs in the other's wake
        # (its background flushes, its connections closing).
        if round_index % 2 == 0:
            ceiling_rps.append(ceiling(chunk))
        with ProcessSampler(source) as sampler:
            results.append(run_wrk(part, wrk_path))
        samples.extend(sampler.samples)
        if round_index % 2 == 1:
            ceiling_rps.append(ceiling(chunk))
    requests = sum(r.requests for r in results)
    seconds = sum(r.duration_s for r in results)
    rps = requests / seconds if seconds else 0.0
    ceiling_mean = statistics.fmean(ceiling_rps)
    round_ratios = [r.rps / c for r, c in zip(results, ceiling_rps, strict=True) if c > 0]
    errors = [r.errors for r in results]
    metrics: dict[str, float] = {
        "rps": round(rps, 1),
        "requests": requests,
        "ceiling_rps": round(ceiling_mean, 1),
        "p50_ms": round(statistics.median(r.latency_p50_ms for r in results), 3),
        "p90_ms": round(max(r.latency_p90_ms for r in results), 3),
        "p99_ms": round(max(r.latency_p99_ms for r in results), 3),
        "max_ms": round(max(r.latency_max_ms for r in results), 3),
        "errors": sum(e.total for e in errors),
        "errors_status": sum(e.status for e in errors),
        "errors_socket": sum(e.connect + e.read + e.write + e.timeout for e in errors),
        "rounds": rounds,
    }
    if round_ratios:
        metrics["ratio"] = round(statistics.median(round_ratios), 3)
        metrics["ratio_min"] = round(min(round_ratios), 3)
        metrics["ratio_max"] = round(max(round_ratios), 3)
    metrics.update(server_metrics(samples))
    details = {
        "rounds": [
            {"rps": round(r.rps, 1), "ceiling_rps": round(c, 1), "p99_ms": r.latency_p99_ms}
            for r, c in zip(results, ceiling_rps, strict=True)
        ],
        "wrk": [r.as_dict() for r in results],
        "connections": job.connections,
        "threads": job.threads,
        "seconds_per_round": chunk,
        "url": job.url,
        "method": job.method,
    }
    return PairedRun(metrics, details)


def measure_wrk(
    job: WrkJob, source: ProcessSource, *, warmup_s: float, wrk_path: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """Warm up, then run ``job`` while sampling the server; return (metrics, details)."""
    if warmup_s > 0:
        run_wrk(dataclasses.replace(job, duration_s=warmup_s), wrk_path)
    with ProcessSampler(source) as sampler:
        result = run_wrk(job, wrk_path)
    metrics = wrk_metrics(result)
    metrics.update(server_metrics(sampler.samples))
    details = {
        "wrk": result.as_dict(),
        "connections": job.connections,
        "threads": job.threads,
        "duration_s": job.duration_s,
        "url": job.url,
        "method": job.method,
    }
    return metrics, details


@dataclass(frozen=True)
class OpenLoopRun:
    """Figures and raw result of one open-loop run."""

    metrics: dict[str, float]
    details: dict[str, Any]
    result: OpenLoopResult


def measure_open_loop(
    config: OpenLoopConfig,
    source: ProcessSource,
    credentials: list[SessionCredentials] | None = None,
    *,
    idle_s: float = 2.0,
) -> OpenLoopRun:
    """Sample the idle server, run the simulation, and derive memory per held session."""
    with ProcessSampler(source) as idle:
        time.sleep(idle_s)
    idle_rss = idle.samples.rss_mean
    with ProcessSampler(source) as sampler:
        result = run_open_loop(config, credentials)
    steady = sampler.samples.window(result.steady_start_wall, result.steady_end_wall)
    s = result.stats
    metrics: dict[str, float] = {
        "sessions": result.sessions,
        "offered_rps": round(result.offered_rps, 1),
        "achieved_rps": round(result.achieved_rps, 1),
        "requests": s.completed,
        "p50_ms": round(s.latency.percentile_us(50) / 1000, 3),
        "p90_ms": round(s.latency.percentile_us(90) / 1000, 3),
        "p99_ms": round(s.latency.percentile_us(99) / 1000, 3),
        "max_ms": round(s.latency.max_us / 1000, 3),
        "errors": s.error_total,
        "lateness_p99_ms": round(s.lateness.percentile_us(99) / 1000, 3),
        "generator_lag_p99_ms": round(s.lag.percentile_us(99) / 1000, 3),
        "generator_cpu_max": round(max(result.worker_cpu, default=0.0), 3),
        "valid": 1.0 if result.valid else 0.0,
        **server_metrics(steady),
        "server_rss_idle_mib": round(idle_rss / 2**20, 1),
        "server_rss_steady_mib": round(steady.rss_mean / 2**20, 1),
    }
    if steady.rss_bytes and idle_rss > 0 and result.sessions:
        per_session = (steady.rss_mean - idle_rss) / result.sessions
        metrics["rss_per_session_kb"] = round(per_session / 1024, 2)
    if len(steady.rss_bytes) >= 2 and steady.rss_bytes[0] > 0:
        growth = (steady.rss_bytes[-1] - steady.rss_bytes[0]) / steady.rss_bytes[0] * 100
        metrics["rss_growth_pct"] = round(growth, 2)
    details = {
        "open_loop": result.summary(),
        "server_samples": {
            "t": [round(t - result.steady_start_wall, 2) for t in sampler.samples.times],
            "cpu_pct": [round(c, 1) for c in sampler.samples.cpu_percent],
            "rss_mib": [round(r / 2**20, 1) for r in sampler.samples.rss_bytes],
        },
    }
    return OpenLoopRun(metrics, details, result)


def open_loop_config(
    host: str,
    port: int,
    *,
    sessions: int,
    ramp_s: float,
    steady_s: float,
    interval_s: float,
    mix: tuple[MixEntry, ...],
) -> OpenLoopConfig:
    """An ``OpenLoopConfig`` with the harness defaults."""
    return OpenLoopConfig(
        host=host,
        port=port,
        sessions=sessions,
        ramp_s=ramp_s,
        steady_s=steady_s,
        interval_s=interval_s,
        mix=mix,
    )
