"""Command line of the harness: ``python -m benchmarks`` / ``sevenp bench`` -> ``main(argv)``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from benchmarks.compare import compare_files
from benchmarks.envinfo import environment
from benchmarks.harness import SERVER_TARGET, Harness, HarnessOptions
from benchmarks.progress import Progress
from benchmarks.report import write_outputs
from benchmarks.results import RunRecord
from benchmarks.scenarios import PROFILES, Profile, RouteConfig, build_scenarios
from benchmarks.server_env import parse_overrides
from benchmarks.servers import PROJECT_ROOT, GranianSettings
from benchmarks.tools import ToolMissingError, ensure_wrk, raise_nofile_limit

DEFAULT_OUT = PROJECT_ROOT / "benchmarks" / "results"


def build_parser() -> argparse.ArgumentParser:
    """Every flag of ``sevenp bench``."""
    p = argparse.ArgumentParser(
        prog="sevenp bench",
        description="Capacity benchmark: every figure is a ratio to a ceiling of this run.",
    )
    p.add_argument(
        "--profile", choices=sorted(PROFILES), default="quick", help="durations and sizes"
    )
    p.add_argument("--compare", type=Path, metavar="OLD.json", help="print deltas against OLD.json")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--soak", action="store_true", help="add a 10-minute soak of held sessions")
    p.add_argument("--only", action="append", default=[], metavar="SCENARIO", help="run only these")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    db = p.add_argument_group("services")
    db.add_argument("--database-url", help="PostgreSQL (default: $DATABASE_URL, else embedded)")
    db.add_argument("--bench-db", default="sevenp_bench", help="fresh database created for the run")
    db.add_argument("--keep-db", action="store_true", help="do not drop the run's database")
    db.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"), help="Redis"
    )
    db.add_argument(
        "--pool-size", type=int, default=10, help="DB pool size of the ceilings and the server"
    )
    srv = p.add_argument_group("server under test")
    srv.add_argument("--server-target", default=SERVER_TARGET, help="Granian factory target")
    srv.add_argument("--server-env", default="production", help="SEVENP_ENV of the server")
    srv.add_argument("--jwt-secret", default=None, help="JWT_SECRET (default: random per run)")
    srv.add_argument(
        "--server-env-var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra/overriding environment variable of the server (repeatable)",
    )
    srv.add_argument(
        "--limited-path",
        default=RouteConfig.limited_path,
        help="route measured with the rate limiter and, on a second server, without it",
    )
    srv.add_argument("--refresh-path", default=RouteConfig.refresh_path, help="token refresh route")
    srv.add_argument(
        "--interval", type=float, default=2.0, help="mean seconds between a session's requests"
    )
    g = p.add_argument_group("granian (ceilings and server alike)")
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--runtime-threads", type=int, default=1)
    g.add_argument("--backlog", type=int, default=4096)
    g.add_argument("--backpressure", type=int, default=19_000, help="connections per worker")
    g.add_argument("--wrk-threads", type=int, choices=(1, 2), default=1)
    return p


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    """Run the harness; 0 when nothing failed, 1 on a failed/invalid/error figure, 130 on Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        env_overrides = parse_overrides(args.server_env_var)
    except ValueError as exc:
        parser.error(str(exc))
    profile = PROFILES[args.profile]
    known = {s.name for s in build_scenarios(profile, soak=True)}
    unknown = sorted(set(args.only) - known)
    if unknown:
        parser.error(
            f"unknown scenario(s) {unknown} for profile {profile.name}; known: {sorted(known)}"
        )
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:  # SIGINT too: it may have been ignored when we were started
        signal.signal(sig, _raise_interrupt)
    try:
        return _run(args, profile, env_overrides)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, profile: Profile, env_overrides: dict[str, str]) -> int:
    progress = Progress()
    raise_nofile_limit()
    settings = GranianSettings(
        workers=args.workers,
        runtime_threads=args.runtime_threads,
        backlog=args.backlog,
        backpressure=args.backpressure,
    )
    routes = RouteConfig(
        limited_path=args.limited_path,
        refresh_path=args.refresh_path,
        interval_s=args.interval,
    )
    record = RunRecord(
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), profile=profile.name
    )
    started = time.monotonic()
    code = 0
    try:
        progress.step(f"profile {profile.name}: checking wrk")
        wrk_path = ensure_wrk()
        record.environment = environment(PROJECT_ROOT, wrk_path)
        record.settings.update(
            {
                "granian": settings.as_dict(),
                "profile": profile.__dict__,
                "routes": {k: v for k, v in routes.__dict__.items() if k != "extra"},
                "server_target": args.server_target,
                "server_env": args.server_env,
                "redis_url": args.redis_url,
                "pool_size": args.pool_size,
                "server_env_vars": sorted(env_overrides),
                "wrk_threads": args.wrk_threads,
                "soak": args.soak,
            }
        )
        options = HarnessOptions(
            profile=profile,
            out_dir=args.out,
            routes=routes,
            settings=settings,
            database_url=args.database_url,
            redis_url=args.redis_url,
            server_env=args.server_env,
            jwt_secret=args.jwt_secret or secrets.token_urlsafe(48),
            server_target=args.server_target,
            bench_db=args.bench_db,
            keep_db=args.keep_db,
            pool_size=args.pool_size,
            server_env_vars=env_overrides,
            soak=args.soak,
            only=frozenset(args.only),
            wrk_path=wrk_path,
            wrk_threads=args.wrk_threads,
        )
        Harness(options, record, progress).run()
    except KeyboardInterrupt:
        record.interrupted = True
        progress.step("interrupted: stopping everything and writing a partial report")
        code = 130
    except ToolMissingError as exc:
        progress.step(f"cannot run: {exc}")
        record.notes.append(str(exc))
        code = 2
    finally:
        record.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record.environment["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        record.duration_s = time.monotonic() - started
        run = record.to_dict()
        paths = write_outputs(run, args.out, plots=not args.no_plots)
        progress.step("wrote " + ", ".join(str(p) for p in paths))
    if args.compare is not None:
        if args.compare.exists():
            deltas = compare_files(args.compare, run)
            (args.out / "compare.md").write_text(f"# Deltas against {args.compare}\n\n{deltas}")
            print(deltas)
        else:
            progress.step(f"--compare: {args.compare} not found")
    summary = record.summary()
    progress.step(
        "verdicts: " + (", ".join(f"{v} {k}" for k, v in sorted(summary.items())) or "none")
    )
    if code == 0 and any(summary.get(k) for k in ("fail", "invalid", "error")):
        code = 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
