"""Keeps the ceiling apps served for the whole run and measures them, alone or as probes that
alternate with a scenario."""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import ceilings as apps
from benchmarks.engines import CeilingProbe, measure_wrk
from benchmarks.progress import Progress
from benchmarks.results import ScenarioResult
from benchmarks.scenarios import CEILINGS, Ceiling, Profile
from benchmarks.servers import GranianServer, GranianSettings
from benchmarks.tools import free_port
from benchmarks.wrk import WrkJob, run_wrk

CEILING_SCHEMA = "sevenp_bench_ceiling"


@dataclasses.dataclass
class CeilingBench:
    """The ceiling servers of one run and their standalone results."""

    profile: Profile
    settings: GranianSettings
    dsn: str | None
    pool_size: int
    logs: Path
    tokens_file: Path
    bodies: dict[str, Path]
    wrk_path: str
    wrk_threads: int
    progress: Progress
    results: dict[str, ScenarioResult] = dataclasses.field(default_factory=dict)
    servers: dict[str, GranianServer] = dataclasses.field(default_factory=dict)
    _runs: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def start(self, stack: contextlib.ExitStack) -> None:
        """Serve every ASGI ceiling (DB ones only with a database); stopped with ``stack``."""
        for ceiling in CEILINGS:
            result = ScenarioResult(
                ceiling.name,
                "argon2" if ceiling.kind == "argon2" else "wrk",
                ceiling.description,
                status="info",
            )
            self.results[ceiling.name] = result
            if ceiling.kind != "asgi":
                continue
            if ceiling.needs_db and self.dsn is None:
                result.status, result.reason = "pending", "no database"
                continue
            server = GranianServer(
                ceiling.app,
                port=free_port(),
                settings=self.settings,
                env={
                    apps.DSN_ENV: self.dsn or "",
                    apps.SCHEMA_ENV: CEILING_SCHEMA,
                    apps.POOL_ENV: str(self.pool_size),
                },
                health_path="/ready",
                log_path=self.logs / f"ceiling-{ceiling.name}.log",
            )
            try:
                server.start()
            except Exception as exc:
                result.status, result.reason = "error", f"could not start: {exc}"
                self.progress.step(f"ceiling {ceiling.name}: ERROR {exc}")
                continue
            stack.callback(server.stop)
            self.servers[ceiling.name] = server

    def job(self, ceiling: Ceiling, connections: int | None = None) -> WrkJob:
        """The wrk job that loads ``ceiling`` (synthetic tokens: same request size as real ones)."""
        server = self.servers[ceiling.name]
        return WrkJob(
            url=server.base_url + ceiling.path,
            method=ceiling.method,
            connections=connections or self.profile.connections,
            threads=self.wrk_threads,
            duration_s=self.profile.wrk_duration_s,
            tokens_file=self.tokens_file,
            body_file=self.bodies.get(ceiling.name),
        )

    def available(self, name: str) -> bool:
        result = self.results.get(name)
        return result is not None and result.status == "info" and "rps" in result.metrics

    def probe(self, name: str, connections: int | None = None) -> CeilingProbe | None:
        """A callable measuring ceiling ``name`` for d seconds (req/s), or None if unavailable."""
        ceiling = next((c for c in CEILINGS if c.name == name), None)
        if ceiling is None:
            return None
        if ceiling.kind == "argon2":
            return lambda d: apps.measure_argon2(samples=3, min_seconds=d).logins_per_s
        if name not in self.servers:
            return None
        job = self.job(ceiling, connections)
        return lambda d: run_wrk(dataclasses.replace(job, duration_s=d), self.wrk_path).rps

    def measure(self, phase: str) -> None:
        """Measure every ceiling alone; a later phase is averaged with the first."""
        for ceiling in CEILINGS:
            result = self.results[ceiling.name]
            if ceiling.kind == "asgi" and ceiling.name not in self.servers:
                continue  # pending (no database) or failed to start
            started = time.monotonic()
            try:
                metrics, details = self._measure_one(ceiling)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                result.status, result.reason = "error", f"{phase}: {exc!r}"
                self.progress.step(f"ceiling {ceiling.name} ({phase}): ERROR {exc!r}")
                continue
            self._record(result, phase, metrics, details)
            result.seconds = round(result.seconds + time.monotonic() - started, 1)
            line = f"ceiling {ceiling.name} ({phase}): {metrics['rps']:,.0f} req/s"
            if "p99_ms" in metrics:
                line += f", p99 {metrics['p99_ms']:.1f} ms"
            if "verify_ms_median" in metrics:
                line += f", one verify {metrics['verify_ms_median']:.1f} ms"
            self.progress.step(line)

    def _measure_one(self, ceiling: Ceiling) -> tuple[dict[str, float], dict[str, Any]]:
        if ceiling.kind == "argon2":
            a = apps.measure_argon2(self.profile.argon2_samples)
            metrics: dict[str, float] = {
                "rps": round(a.logins_per_s, 1),
                "verify_ms_median": round(a.verify_ms_median, 2),
                "verify_ms_min": round(a.verify_ms_min, 2),
                "cores": a.cores,
            }
            return metrics, {
                "samples": a.samples,
                "memory_kib": apps.ARGON2_MEMORY_KIB,
                "time_cost": apps.ARGON2_TIME_COST,
                "parallelism": apps.ARGON2_PARALLELISM,
            }
        server = self.servers[ceiling.name]
        metrics, details = measure_wrk(
            self.job(ceiling),
            server.processes,
            warmup_s=self.profile.wrk_warmup_s,
            wrk_path=self.wrk_path,
        )
        if metrics["errors"]:
            raise RuntimeError(f"ceiling answered with {metrics['errors']:g} errors")
        return metrics, details

    def _record(
        self, result: ScenarioResult, phase: str, metrics: dict[str, float], details: dict[str, Any]
    ) -> None:
        runs = self._runs.setdefault(result.name, [])
        runs.append(metrics["rps"])
        if len(runs) == 1:
            result.metrics = dict(metrics)
        result.metrics[f"rps_{phase}"] = metrics["rps"]
        result.details[phase] = {"metrics": metrics, **details}
        result.metrics["rps"] = round(statistics.fmean(runs), 1)
        if len(runs) > 1:
            result.metrics["drift_pct"] = round((runs[-1] - runs[0]) / runs[0] * 100, 1)
        result.status, result.reason = "info", ""
