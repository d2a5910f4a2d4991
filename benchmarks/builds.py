"""Builds side by side: one route on servers of several source trees, in alternating rounds.

    uv run python -m benchmarks.builds BASE=/tmp/wt/base NEW=/tmp/wt/new BASE2=/tmp/wt/base2 \\
        OFF=/tmp/wt/base:RATE_LIMIT_ENABLED=false \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0

Each `NAME=TREE[:VAR=VALUE,...]` is a server started from TREE (a checkout or a git worktree:
Granian imports the app from its working directory) with the harness's environment plus the
variables given. All of them serve at once from one seeded database; wrk drives each in turn
for `--seconds`, the order reversed every other round. Per build it prints the median of the
per-round throughput ratio to the first build, and the CPU time per request of the server's
processes and of Redis (the whole process: run nothing else against it).

What a difference is worth: two servers of one build agree within about 1 us of server CPU
per request in one run, but a comparison moves by 2-3 us from run to run on these machines.
Name the base twice, from two worktrees (BASE2 above), to see the spread of the run at hand,
and repeat a run before believing a difference under 3 us. Serve every build from a worktree:
the main checkout read 2-4 us above worktrees of equivalent code in four runs of five
(benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from benchmarks.database import base_dsn, bench_database
from benchmarks.inputs import write_tokens
from benchmarks.seed import seed_sessions
from benchmarks.server_env import parse_overrides, server_environment
from benchmarks.servers import GranianServer, GranianSettings
from benchmarks.tools import ensure_wrk, free_port
from benchmarks.wrk import WrkJob, run_wrk
from server.db.migrate import apply_migrations

SERVER_TARGET = "server.app:create_app"


@dataclass(frozen=True)
class Build:
    name: str
    tree: Path
    env: dict[str, str]


@dataclass(frozen=True)
class Round:
    """One build's wrk round: requests per second and CPU microseconds per request."""

    rps: float
    server_us: float
    redis_us: float


@dataclass(frozen=True)
class Summary:
    name: str
    rps: float
    ratio: float
    server_us: float
    redis_us: float


def parse_build(spec: str) -> Build:
    """`NAME=TREE[:VAR=VALUE,...]` -> Build; raises ValueError when malformed."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"expected NAME=TREE[:VAR=VALUE,...], got {spec!r}")
    tree, _, variables = rest.partition(":")
    env = parse_overrides(v for v in variables.split(",") if v)
    return Build(name, Path(tree).resolve(), env)


def summarize(rounds: dict[str, list[Round]]) -> list[Summary]:
    """Medians per build, in the order given; `ratio` is the median of the per-round ratios to
    the first build's round of the same index (rounds of one index ran back to back)."""
    base = next(iter(rounds.values()))
    return [
        Summary(
            name,
            statistics.median(r.rps for r in own),
            statistics.median(r.rps / b.rps for r, b in zip(own, base, strict=True)),
            statistics.median(r.server_us for r in own),
            statistics.median(r.redis_us for r in own),
        )
        for name, own in rounds.items()
    ]


def _cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _redis_process(redis_url: str) -> list[psutil.Process]:
    """The process listening on the Redis URL's port, when it can be seen from here."""
    port = urlsplit(redis_url).port or 6379
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if "redis" not in (process.info["name"] or ""):
                continue
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                    return [process]
    return []


def _round(server: GranianServer, job: WrkJob, redis: list[psutil.Process], wrk_path: str) -> Round:
    processes = server.processes()
    server_before, redis_before = _cpu_seconds(processes), _cpu_seconds(redis)
    result = run_wrk(job, wrk_path)
    requests = max(1.0, result.rps * job.duration_s)
    return Round(
        result.rps,
        (_cpu_seconds(processes) - server_before) * 1e6 / requests,
        (_cpu_seconds(redis) - redis_before) * 1e6 / requests,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.builds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("builds", nargs="+", metavar="NAME=TREE[:VAR=VALUE,...]")
    parser.add_argument("--path", default="/api/auth/me", help="route driven (bearer tokens)")
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=10_000, help="sessions seeded and rotated")
    parser.add_argument("--database-url", help="PostgreSQL (default: as the harness)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    return parser


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        builds = [parse_build(spec) for spec in args.builds]
    except ValueError as exc:
        parser.error(str(exc))
    if len({b.name for b in builds}) != len(builds):
        parser.error("build names must differ")
    wrk_path = ensure_wrk()
    settings = GranianSettings(workers=args.workers)
    secret = secrets.token_urlsafe(32)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sevenp-builds-")))
        dsn, _ = stack.enter_context(base_dsn(args.database_url))
        dsn, _ = stack.enter_context(bench_database(dsn, "sevenp_builds"))
        asyncio.run(apply_migrations(dsn))
        sessions = asyncio.run(seed_sessions(dsn, args.tokens, jwt_secret=secret))
        tokens = write_tokens(work / "tokens.txt", sessions)
        servers: dict[str, GranianServer] = {}
        for build in builds:
            env = server_environment(
                database_url=dsn,
                redis_url=args.redis_url,
                sevenp_env="production",
                jwt_secret=secret,
                settings=settings,
                pool_size=20,
                mail_dir=work / "mail",
                overrides=build.env,
            )
            server = GranianServer(
                SERVER_TARGET,
                port=free_port(),
                settings=settings,
                env=env,
                log_path=work / f"{build.name}.log",
                cwd=build.tree,
            )
            server.start(ready_timeout=60)
            stack.callback(server.stop)
            servers[build.name] = server
        jobs = {
            name: WrkJob(
                url=server.base_url + args.path,
                connections=args.connections,
                duration_s=args.seconds,
                tokens_file=tokens,
            )
            for name, server in servers.items()
        }
        for job in jobs.values():  # warm-up: a fresh server needs seconds to settle
            run_wrk(dataclasses.replace(job, duration_s=3.0), wrk_path)
        redis = _redis_process(args.redis_url)
        rounds: dict[str, list[Round]] = {name: [] for name in servers}
        for index in range(args.rounds):
            order = list(servers) if index % 2 == 0 else list(reversed(servers))
            for name in order:
                rounds[name].append(_round(servers[name], jobs[name], redis, wrk_path))
    print(f"{args.rounds} rounds of {args.seconds:g} s, {args.path}; ratio to {builds[0].name}")
    if not redis:
        print(f"(no Redis process listening for {args.redis_url} seen: its CPU reads 0)")
    print(f"{'build':12} {'req/s':>8} {'ratio':>7} {'server us/req':>14} {'redis us/req':>13}")
    for s in summarize(rounds):
        print(f"{s.name:12} {s.rps:8.0f} {s.ratio:7.3f} {s.server_us:14.1f} {s.redis_us:13.2f}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
