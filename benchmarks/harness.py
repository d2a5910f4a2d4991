"""Runs one benchmark session: ceilings, the server under test, seeding, every scenario, verdicts.

Everything started here is entered on one ``ExitStack``, so servers, the embedded database and
temporary files are cleaned up however the run ends (including Ctrl-C). The record is filled as
the run goes, so an interrupted run still reports what it measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.util
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.ceiling_bench import CEILING_SCHEMA, CeilingBench
from benchmarks.ceiling_db import create_ceiling_schema, drop_ceiling_schema
from benchmarks.database import base_dsn, bench_database, redact
from benchmarks.engines import (
    CeilingProbe,
    measure_open_loop,
    measure_paired,
    measure_wrk,
    open_loop_config,
    probe,
)
from benchmarks.export_bench import measure_export, seed_enrollments
from benchmarks.inputs import write_body, write_login_bodies, write_synthetic_tokens, write_tokens
from benchmarks.learning import LearningData
from benchmarks.opensim.mix import SessionCredentials
from benchmarks.opensim.search import SessionTarget, find_max_sessions
from benchmarks.opensim.simulate import OpenLoopResult
from benchmarks.profiling import profile_under_load
from benchmarks.progress import Progress
from benchmarks.results import RunRecord, ScenarioResult, evaluate
from benchmarks.scenarios import (
    CATALOGUE_COURSES,
    CEILINGS,
    Profile,
    RouteConfig,
    Scenario,
    build_scenarios,
)
from benchmarks.seed import SeededSession
from benchmarks.server_env import server_environment
from benchmarks.servers import GranianServer, GranianSettings, ServerStartError
from benchmarks.tools import free_port
from benchmarks.wrk import WrkJob, run_wrk

SERVER_TARGET = "server.app:create_app"
# `sevenp serve` applies migrations before Granian starts; the harness starts Granian itself.
MIGRATIONS = "server.db.migrate:apply_migrations"


@dataclass
class HarnessOptions:
    """Everything the command line decides."""

    profile: Profile
    out_dir: Path
    routes: RouteConfig = field(default_factory=RouteConfig)
    settings: GranianSettings = field(default_factory=GranianSettings)
    database_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379"
    server_env: str = "production"
    jwt_secret: str = ""
    server_target: str = SERVER_TARGET
    bench_db: str = "sevenp_bench"
    keep_db: bool = False
    pool_size: int = 10
    server_env_vars: dict[str, str] = field(default_factory=dict)
    soak: bool = False
    only: frozenset[str] = frozenset()
    wrk_path: str = "wrk"
    wrk_threads: int = 1


class Harness:
    """One run of every phase."""

    def __init__(self, options: HarnessOptions, record: RunRecord, progress: Progress) -> None:
        self.o = options
        self.record = record
        self.progress = progress
        self.logs = options.out_dir / "logs"
        self.dsn: str | None = None
        self.files: dict[str, Path] = {}
        self.ceilings: CeilingBench | None = None
        self.server: GranianServer | None = None
        self.variants: dict[tuple[tuple[str, str], ...], GranianServer] = {}
        self.server_reason = "server not started"
        self.seeded: list[SeededSession] = []
        self._next_unused = 0
        self.tokens_reason = "pending: not seeded"
        self.learning: LearningData | None = None
        self.learning_reason = "pending: catalogue not seeded"
        self.open_loop_points: list[dict[str, Any]] = []
        self._stack = contextlib.ExitStack()
        self.scenarios = build_scenarios(options.profile, options.routes, soak=options.soak)
        if options.only:
            self.scenarios = [s for s in self.scenarios if s.name in options.only]

    # -- phases ------------------------------------------------------------------------------

    def run(self) -> None:
        """Database, ceilings, server, seeding, scenarios, ceiling re-check, verdicts."""
        self.record.settings["open_loop_points"] = self.open_loop_points
        for old_log in self.logs.glob("*.log"):
            old_log.unlink()
        with contextlib.ExitStack() as stack:
            self._stack = stack
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sevenp-bench-")))
            self._write_static_inputs(tmp)
            self._open_database(stack)
            self.ceilings = CeilingBench(
                profile=self.o.profile,
                settings=self.o.settings,
                dsn=self.dsn,
                pool_size=self.o.pool_size,
                logs=self.logs,
                tokens_file=self.files["synthetic_tokens"],
                bodies={c.name: self.files[f"body:{c.name}"] for c in CEILINGS if c.body},
                wrk_path=self.o.wrk_path,
                wrk_threads=self.o.wrk_threads,
                progress=self.progress,
                results=self.record.ceilings,
            )
            self.ceilings.start(stack)
            self.ceilings.measure("before")
            if any(s.needs_server for s in self.scenarios):
                self._start_server(stack)
                if self.server is not None and any(s.needs_courses for s in self.scenarios):
                    self._seed_catalogue()
                if self.server is not None and any(s.needs_tokens for s in self.scenarios):
                    self._seed(tmp)
            try:
                for scenario in self.scenarios:
                    self.record.scenarios.append(self.run_scenario(scenario))
                self._profile_slowest()
                if self.o.profile.recheck_ceilings:
                    self.ceilings.measure("after")
            finally:
                self.finalize()  # verdicts of what was measured, also when interrupted

    def _write_static_inputs(self, tmp: Path) -> None:
        self.files["synthetic_tokens"] = write_synthetic_tokens(tmp / "synthetic_tokens.txt", 5000)
        for c in CEILINGS:
            if c.body is not None:
                self.files[f"body:{c.name}"] = write_body(tmp / f"body_{c.name}.json", c.body)
        for s in self.scenarios:
            if s.body is not None:
                self.files[f"body:{s.name}"] = write_body(tmp / f"body_{s.name}.json", s.body)

    def _open_database(self, stack: contextlib.ExitStack) -> None:
        try:
            dsn, source = stack.enter_context(base_dsn(self.o.database_url))
            dsn, note = stack.enter_context(
                bench_database(dsn, self.o.bench_db, keep=self.o.keep_db)
            )
            asyncio.run(create_ceiling_schema(dsn, CEILING_SCHEMA))
        except Exception as exc:
            self.progress.step(f"database unavailable: {exc!r}")
            self.record.notes.append(f"database unavailable: {exc!r}")
            return
        stack.callback(_drop_ceiling_schema, dsn)
        self.dsn = dsn
        self.record.settings["database"] = {"dsn": redact(dsn), "source": source, "note": note}
        self.progress.step(f"database: {redact(dsn)} ({source}; {note})")

    def _restart_server(self) -> None:
        """Replace the running server with a fresh one (same settings, new port)."""
        assert self.server is not None
        old = self.server
        old.stop()
        fresh = dataclasses.replace(old, port=free_port())
        self.progress.step(f"restarting server on port {fresh.port} for an idle baseline")
        self.server = None
        try:
            fresh.start(ready_timeout=60)
        except ServerStartError as exc:
            self.server_reason = f"server unavailable: restart failed: {exc}"
            raise
        self._stack.callback(fresh.stop)
        self.server = fresh

    def _start_server(self, stack: contextlib.ExitStack) -> None:
        module = self.o.server_target.split(":", 1)[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            self.server_reason = f"server unavailable: module {module} not found"
        elif self.dsn is None:
            self.server_reason = "server unavailable: no database"
        if self.server_reason != "server not started":
            self.progress.step(self.server_reason)
            return
        try:
            self._migrate()
        except Exception as exc:
            self.server_reason = f"server unavailable: migrations failed: {exc!r}"
            self.progress.step(self.server_reason)
            self.record.notes.append(self.server_reason)
            return
        server = GranianServer(
            self.o.server_target,
            port=free_port(),
            settings=self.o.settings,
            env=server_environment(
                database_url=self.dsn or "",
                redis_url=self.o.redis_url,
                sevenp_env=self.o.server_env,
                jwt_secret=self.o.jwt_secret,
                settings=self.o.settings,
                pool_size=self.o.pool_size,
                mail_dir=self.logs / "mail",
                overrides=self.o.server_env_vars,
            ),
            health_path="/health/ready",
            log_path=self.logs / "server.log",
        )
        self.progress.step(f"starting server {self.o.server_target} on port {server.port}")
        try:
            server.start(ready_timeout=60)
        except ServerStartError as exc:
            self.server_reason = f"server unavailable: {exc}"
            self.progress.step(self.server_reason)
            self.record.notes.append(self.server_reason)
            return
        stack.callback(server.stop)
        self.server, self.server_reason = server, ""
        self.progress.step(f"server ready ({len(server.processes())} processes)")

    def _variant_server(self, changes: tuple[tuple[str, str], ...]) -> GranianServer:
        """The server under test with some settings changed, started on first use."""
        variant = self.variants.get(changes)
        if variant is not None:
            return variant
        assert self.server is not None
        env = {**self.server.env, **dict(changes)}
        variant = dataclasses.replace(
            self.server, port=free_port(), env=env, log_path=self.logs / "server-variant.log"
        )
        self.progress.step(f"starting a second server with {dict(changes)} on port {variant.port}")
        variant.start(ready_timeout=60)
        self._stack.callback(variant.stop)
        self.variants[changes] = variant
        return variant

    def _migrate(self) -> None:
        """Apply the server's migrations to the run's database (when the server has them)."""
        module_name, func_name = MIGRATIONS.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            self.progress.step(f"no migrations applied ({exc})")
            return
        applied = asyncio.run(getattr(module, func_name)(self.dsn))
        self.progress.step(f"migrations applied: {applied or 'none pending'}")

    def _seed_catalogue(self) -> None:
        """``seed_demo``'s courses in the server's database; enrollments follow with sessions."""
        assert self.dsn is not None
        self.progress.step(f"seeding the catalogue: seed_demo with {CATALOGUE_COURSES:,} courses")
        started = time.monotonic()
        try:
            self.learning = LearningData.seed_database(self.dsn)
        except Exception as exc:
            self.learning_reason = f"catalogue seeding failed: {exc!r}"
            self.progress.step(self.learning_reason)
            self.record.notes.append(self.learning_reason)
            return
        catalogue = self.learning.catalogue
        self.record.settings["catalogue"] = {
            "courses": len(catalogue.titles),
            "published": len(catalogue.published),
            "lessons": sum(len(v) for v in catalogue.lessons.values()),
            "search_terms": len(self.learning.terms),
            "search_term_sample": list(self.learning.terms[:12]),
            "seconds": round(time.monotonic() - started, 1),
        }
        self.progress.step(
            f"catalogue seeded: {len(catalogue.titles):,} courses, "
            f"{len(catalogue.published):,} published ({time.monotonic() - started:.0f} s)"
        )

    def _seed_more(self, count: int, role: str = "student") -> list[SeededSession]:
        assert self.dsn is not None
        from benchmarks.seed import seed_sessions

        seeded = asyncio.run(
            seed_sessions(self.dsn, count, jwt_secret=self.o.jwt_secret, role=role)
        )
        if self.learning is not None and role == "student":
            self.learning.enroll(seeded)  # so that their sessions have lessons to complete
        return seeded

    def _take_sessions(self, n: int) -> list[SeededSession]:
        """``n`` sessions no earlier run has used (seeding more when needed).

        Open-loop mixes rotate refresh tokens, and presenting an already-rotated refresh token
        revokes the session, so every run gets sessions of its own.
        """
        missing = self._next_unused + n - len(self.seeded)
        if missing > 0:
            self.progress.step(f"seeding {missing:,} more sessions")
            self.seeded.extend(self._seed_more(missing))
        taken = self.seeded[self._next_unused : self._next_unused + n]
        self._next_unused += n
        return taken

    def _seed(self, tmp: Path) -> None:
        profile = self.o.profile
        sessions = [
            s.sessions or profile.open_loop_sessions
            for s in self.scenarios
            if s.engine == "open-loop" and s.needs_tokens
        ]
        count = profile.tokens + max(sessions, default=0)
        self.progress.step(f"seeding {count:,} sessions")
        try:
            seeded = self._seed_more(count)
        except (NotImplementedError, ImportError) as exc:
            self.tokens_reason = f"pending: seeding unavailable ({exc})"
            self.progress.step(self.tokens_reason)
            return
        except Exception as exc:
            self.tokens_reason = f"seeding failed: {exc!r}"
            self.progress.step(self.tokens_reason)
            self.record.notes.append(self.tokens_reason)
            return
        self.seeded, self.tokens_reason = seeded, ""
        rotation = self._take_sessions(profile.tokens)  # closed loop: access tokens only
        self.files["tokens"] = write_tokens(tmp / "tokens.txt", rotation)
        self.files["login_bodies"] = write_login_bodies(tmp / "login_bodies.txt", rotation)
        self.progress.step(f"seeded {len(seeded):,} sessions")
        if self.learning is not None:
            try:
                admin = self._seed_more(1, role="admin")[0]
                self.learning.write_lists(tmp, rotation, admin.access_token, profile)
                wanted = {s.requests for s in self.scenarios if s.requests} & {
                    "submit",
                    "gradebook",
                }
                if wanted:
                    assert self.server is not None
                    self.progress.step(f"seeding the assessment scenarios' data: {sorted(wanted)}")
                    self.learning.write_assessment_lists(
                        tmp, self.server.base_url, rotation, admin.access_token, wanted
                    )
                    self.record.settings["assessments"] = dict(self.learning.assessments)
            except Exception as exc:
                self.learning_reason = f"learning request lists failed: {exc!r}"
                self.progress.step(self.learning_reason)
                self.record.notes.append(self.learning_reason)
                self.learning = None
                return
            self.record.settings["request_lists"] = dict(self.learning.sizes)

    # -- one scenario ------------------------------------------------------------------------

    def _pending_reason(self, s: Scenario) -> str | None:
        if s.needs_server and self.server is None:
            return self.server_reason
        if s.needs_tokens and not self.seeded:
            return self.tokens_reason
        if s.needs_courses and (
            self.learning is None or (s.requests and s.requests not in self.learning.lists)
        ):
            return self.learning_reason
        if not s.needs_server and (self.ceilings is None or s.against not in self.ceilings.servers):
            return f"ceiling app {s.against} unavailable"
        return None

    def run_scenario(self, s: Scenario) -> ScenarioResult:
        """Run one scenario; never raises except on Ctrl-C."""
        result = ScenarioResult(
            s.name,
            s.engine,
            s.description,
            ceiling=s.ceiling,
            targets=[c.describe() for c in s.checks],
        )
        pending = self._pending_reason(s)
        if pending is not None:
            result.status, result.reason = "pending", pending
            self.progress.step(f"{s.name}: pending ({pending[:300]})")
            return result
        started = time.monotonic()
        self.progress.step(f"{s.name}: running ({s.engine})")
        try:
            if s.fresh_server and s.needs_server:
                self._restart_server()
            target = self._target(s)
            missing = self._probe(s, target)
            if missing:
                result.status, result.reason = "pending", missing
                self.progress.step(f"{s.name}: pending ({missing})")
                return result
            if s.engine == "wrk":
                self._run_wrk(s, target, result)
            elif s.engine == "export":
                self._run_export(result)
            else:
                self._run_open_loop(s, target, result)
        except KeyboardInterrupt:
            result.status, result.reason = "error", "interrupted while running"
            self.record.scenarios.append(result)
            raise
        except Exception as exc:
            result.status, result.reason = "error", repr(exc)
            self.progress.step(f"{s.name}: ERROR {exc!r}")
            return result
        result.seconds = round(time.monotonic() - started, 1)
        return result

    def _target(self, s: Scenario) -> GranianServer:
        if s.needs_server and s.server_env:
            return self._variant_server(s.server_env)
        if s.needs_server:
            assert self.server is not None
            return self.server
        assert self.ceilings is not None
        return self.ceilings.servers[s.against]

    def _probe(self, s: Scenario, target: GranianServer) -> str | None:
        """'route not implemented' when the target answers 404/405 to the scenario's requests."""
        token = self.seeded[0].access_token if self.seeded else None
        requests: list[tuple[str, str, bytes | None, bool]]
        if s.requests is not None:
            assert self.learning is not None
            path, token = self.learning.first_row(s.requests)
            self.learning.offset_file(s.name, start=1)  # the probe sent the first row
            body_file = self.learning.bodies.get(s.requests)
            body = body_file.read_bytes() if body_file else None
            status = probe(target.base_url + path, s.method, body, token)
            if status in (404, 405):
                return f"route not implemented: {s.method} {path} -> {status}"
            return None
        if s.engine == "wrk":
            body = None if s.body is None else msgspec.json.encode(s.body)
            if s.auth == "login" and self.seeded:
                user = self.seeded[-1]
                body = msgspec.json.encode({"email": user.email, "password": user.password})
            requests = [(s.method, s.path, body, s.auth == "bearer")]
        else:
            requests = [
                (e.method, e.path, e.encoded_body(), e.auth)
                for e in s.mix
                if e.kind == "request" and "{" not in e.path
            ]
        missing = []
        for method, path, body, auth in requests:
            status = probe(target.base_url + path, method, body, token if auth else None)
            if status in (404, 405):
                missing.append(f"{method} {path} -> {status}")
        return ("route not implemented: " + ", ".join(missing)) if missing else None

    def _wrk_job(self, s: Scenario, target: GranianServer) -> WrkJob:
        if s.requests is not None:
            assert self.learning is not None
            return WrkJob(
                url=target.base_url + "/",
                method=s.method,
                connections=s.connections or self.o.profile.connections,
                threads=self.o.wrk_threads,
                duration_s=self.o.profile.wrk_duration_s,
                rows_file=self.learning.lists[s.requests],
                offset_file=self.learning.offset_file(s.name),
                body_file=self.learning.bodies.get(s.requests),
            )
        return WrkJob(
            url=target.base_url + s.path,
            method=s.method,
            connections=s.connections or self.o.profile.connections,
            threads=self.o.wrk_threads,
            duration_s=self.o.profile.wrk_duration_s,
            tokens_file=self.files.get("tokens") if s.auth == "bearer" else None,
            body_file=self.files.get(f"body:{s.name}"),
            bodies_file=self.files.get("login_bodies") if s.auth == "login" else None,
        )

    def _ceiling_probe(self, s: Scenario, connections: int) -> CeilingProbe | None:
        if not s.ceiling:
            return None
        if s.ceiling.startswith("scenario:"):
            other_name = s.ceiling.split(":", 1)[1]
            other = next((x for x in self.scenarios if x.name == other_name), None)
            done = any(
                r.name == other_name and r.status not in ("pending", "error")
                for r in self.record.scenarios
            )
            if other is None or not done:
                return None
            job = self._wrk_job(other, self._target(other))
            return lambda d: run_wrk(dataclasses.replace(job, duration_s=d), self.o.wrk_path).rps
        assert self.ceilings is not None
        return self.ceilings.probe(s.ceiling, connections)

    def _run_wrk(self, s: Scenario, target: GranianServer, result: ScenarioResult) -> None:
        profile = self.o.profile
        job = self._wrk_job(s, target)
        ceiling = self._ceiling_probe(s, job.connections)
        if ceiling is None:
            metrics, details = measure_wrk(
                job, target.processes, warmup_s=profile.wrk_warmup_s, wrk_path=self.o.wrk_path
            )
        else:
            scale = s.round_scale
            paired = measure_paired(
                dataclasses.replace(job, duration_s=job.duration_s * scale),
                ceiling,
                target.processes,
                rounds=profile.rounds * scale,
                warmup_s=profile.wrk_warmup_s,
                wrk_path=self.o.wrk_path,
            )
            metrics, details = paired.metrics, paired.details
        result.metrics, result.details, result.status = metrics, details, "info"
        if s.requests is not None and self.learning is not None:
            used, available = self.learning.rows_used(s.name), self.learning.sizes[s.requests]
            result.details["request_list"] = {"name": s.requests, "sent": used, "rows": available}
            if used > available and s.requests in ("enroll", "complete"):
                result.details["request_list"]["note"] = "rows wrapped: repeats answered 200"
        ratio = ""
        if "ratio" in metrics:
            ratio = (
                f", ratio {metrics['ratio']:.2f} of {s.ceiling} "
                f"(rounds {metrics['ratio_min']:.2f}-{metrics['ratio_max']:.2f}; "
                f"ceiling {metrics['ceiling_rps']:,.0f} req/s alongside)"
            )
        self.progress.step(
            f"{s.name}: {metrics['rps']:,.0f} req/s{ratio}, p99 {metrics['p99_ms']:.1f} ms, "
            f"errors {metrics['errors']:g}"
        )

    def _run_export(self, result: ScenarioResult) -> None:
        """The enrollments export on a database and a server of its own (``export_bench``)."""
        assert self.server is not None
        assert self.dsn is not None
        rows = self.o.profile.export_rows
        name = f"{self.o.bench_db}_export"
        dsn, _note = self._stack.enter_context(bench_database(self.dsn, name, keep=self.o.keep_db))
        module_name, func_name = MIGRATIONS.split(":")
        asyncio.run(getattr(importlib.import_module(module_name), func_name)(dsn))
        self.progress.step(f"export: seeding {rows:,} enrollments in database {name}")
        started = time.monotonic()
        seeded = seed_enrollments(dsn, rows)
        seed_s = time.monotonic() - started
        server = dataclasses.replace(
            self.server,
            port=free_port(),
            env={**self.server.env, "DATABASE_URL": dsn},
            log_path=self.logs / "server-export.log",
        )
        self.progress.step(f"export: {seeded:,} rows in {seed_s:.0f} s; server on {server.port}")
        server.start(ready_timeout=60)
        try:
            from benchmarks.seed import seed_sessions

            admin = asyncio.run(seed_sessions(dsn, 1, jwt_secret=self.o.jwt_secret, role="admin"))
            metrics, details = measure_export(
                server.host,
                server.port,
                admin[0].access_token,
                dsn,
                server.processes,
                rows=seeded,
                rounds=self.o.profile.export_rounds,
            )
        finally:
            server.stop()
        details.update(database=name, seed_seconds=round(seed_s, 1))
        result.metrics, result.details, result.status = metrics, details, "info"
        self.progress.step(
            f"{result.name}: {metrics['rps']:,.0f} rows/s, COPY {metrics['ceiling_rps']:,.0f} "
            f"rows/s (ratio {metrics['ratio']:.2f}), first byte {metrics['ttfb_ms']:.0f} ms, "
            f"server RSS +{metrics['rss_growth_mib']:.1f} MiB, errors {metrics['errors']:g}"
        )

    def _credentials(self, n: int) -> list[SessionCredentials]:
        if self.learning is not None:
            return [self.learning.credentials(x) for x in self._take_sessions(n)]
        return [
            SessionCredentials(x.access_token, x.refresh_token, x.user_id)
            for x in self._take_sessions(n)
        ]

    def _open_loop_once(
        self, s: Scenario, target: GranianServer, sessions: int, steady_s: float
    ) -> tuple[dict[str, float], dict[str, Any], OpenLoopResult]:
        config = open_loop_config(
            target.host,
            target.port,
            sessions=sessions,
            ramp_s=max(self.o.profile.open_loop_ramp_s, sessions / 1000),
            steady_s=steady_s,
            interval_s=self.o.routes.interval_s,
            mix=s.mix,
        )
        creds = self._credentials(sessions) if s.needs_tokens else None
        run = measure_open_loop(config, target.processes, creds)
        m = run.metrics
        self.open_loop_points.append(
            {
                "scenario": s.name,
                "sessions": sessions,
                "p50_ms": m["p50_ms"],
                "p99_ms": m["p99_ms"],
                "rss_steady_mib": m["server_rss_steady_mib"],
                "rss_idle_mib": m["server_rss_idle_mib"],
                "valid": bool(m["valid"]),
            }
        )
        line = (
            f"{s.name}: {sessions:,} sessions, "
            f"{m['achieved_rps']:,.0f}/{m['offered_rps']:,.0f} req/s sent/offered, "
            f"p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms, errors {m['errors']:g}, "
            f"server RSS {m['server_rss_idle_mib']:.0f}->{m['server_rss_steady_mib']:.0f} MiB"
        )
        if not run.result.valid:
            line += " INVALID: " + "; ".join(run.result.invalid_reasons)
        self.progress.step(line)
        return run.metrics, run.details, run.result

    def _run_open_loop(self, s: Scenario, target: GranianServer, result: ScenarioResult) -> None:
        profile = self.o.profile
        sessions = s.sessions or profile.open_loop_sessions
        steady = s.steady_s or profile.open_loop_steady_s
        metrics, details, first = self._open_loop_once(s, target, sessions, steady)
        result.metrics, result.details, result.status = metrics, details, "info"
        if not (s.search and profile.search_counts):
            return
        cache = {sessions: first}

        def run_at(n: int) -> OpenLoopResult:
            if n in cache:
                return cache[n]
            if s.fresh_server and s.needs_server:
                self._restart_server()  # each step from an idle server, also after a collapse
            return self._open_loop_once(s, self._target(s), n, profile.search_steady_s)[2]

        outcome = find_max_sessions(
            run_at,
            [sessions, *profile.search_counts],
            SessionTarget(),
            descend_to=profile.search_floor,
        )
        result.metrics["max_sessions"] = outcome.best or 0
        result.details["search"] = {"steps": outcome.steps, "stopped": outcome.stopped}
        self.progress.step(f"{s.name}: largest passing session count {outcome.best or 0:,}")

    def _profile_slowest(self) -> None:
        """py-spy the closed-loop scenario furthest below its ratio target (when any is)."""
        by_name = {s.name: s for s in self.scenarios}
        shortfalls = []
        for result in self.record.scenarios:
            scenario = by_name.get(result.name)
            ratio = result.metrics.get("ratio")
            target = (
                next((c.limit for c in scenario.checks if c.metric == "ratio"), None)
                if (scenario)
                else None
            )
            if scenario and scenario.engine == "wrk" and ratio and target and ratio < target:
                shortfalls.append((ratio / target, scenario))
        if not shortfalls:
            return
        _, slowest = min(shortfalls, key=lambda item: item[0])
        target = self._target(slowest)
        workers = [p for p in target.processes()[1:] if p.is_running()]
        if not workers:
            return
        raw = self.logs / f"profile-{slowest.name}.txt"
        self.progress.step(f"profiling {slowest.name} with py-spy (pid {workers[0].pid})")
        summary = profile_under_load(
            self._wrk_job(slowest, target), workers[0].pid, raw,
            seconds=self.o.profile.wrk_duration_s, wrk_path=self.o.wrk_path,
        )  # fmt: skip
        summary.update(scenario=slowest.name, raw=str(raw.relative_to(self.logs.parent)))
        self.record.hotspots = summary

    # -- verdicts ----------------------------------------------------------------------------

    def _standalone_ceiling(self, name: str) -> float | None:
        if name.startswith("scenario:"):
            other = name.split(":", 1)[1]
            for r in self.record.scenarios:
                if r.name == other and r.status not in ("pending", "error"):
                    return r.metrics.get("rps")
            return None
        ceiling = self.record.ceilings.get(name)
        if ceiling is None or ceiling.status != "info":
            return None
        return ceiling.metrics.get("rps")

    def finalize(self) -> None:
        """Ratios (paired ceiling when measured, else the standalone one), then verdicts."""
        by_name = {s.name: s for s in self.scenarios}
        for result in self.record.scenarios:
            if result.status in ("pending", "error"):
                continue
            scenario = by_name[result.name]
            if scenario.ceiling:
                ceiling = result.metrics.get("ceiling_rps") or self._standalone_ceiling(
                    scenario.ceiling
                )
                if ceiling:
                    result.metrics["ceiling_rps"] = ceiling
                    if "ratio" not in result.metrics:  # paired runs carry their median ratio
                        result.metrics["ratio"] = round(result.metrics["rps"] / ceiling, 3)
            valid = result.metrics.get("valid", 1.0) == 1.0
            status, outcomes, reason = evaluate(result.metrics, scenario.checks, valid=valid)
            result.status, result.checks = status, outcomes
            if status == "invalid":
                reasons = result.details.get("open_loop", {}).get("invalid_reasons", [])
                result.reason = "; ".join(reasons) or reason
            else:
                result.reason = reason


def _drop_ceiling_schema(dsn: str) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(drop_ceiling_schema(dsn, CEILING_SCHEMA))
