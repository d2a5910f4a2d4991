"""The `sevenp` command: serve, migrate, create-user, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from server.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("sevenp.cli")


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"sevenp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (exported for the workers)."""
    if settings.database_url:
        return settings.database_url
    from server.db.embedded import start_embedded_postgres

    url = start_embedded_postgres(settings.data_dir)
    os.environ["DATABASE_URL"] = url
    return url


def _migrate(url: str) -> None:
    from server.db.migrate import apply_migrations

    applied = asyncio.run(apply_migrations(url))
    logger.info("migrations applied: %s", applied or "none pending")


def cmd_serve(args: argparse.Namespace) -> int:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.server import Server

    settings = _settings_or_exit()
    url = _database_url(settings)
    _migrate(url)
    os.environ["SEVENP_MAIN_PID"] = str(os.getpid())
    server = Server(
        "server.app:create_app",
        factory=True,
        address=args.host or settings.host,
        port=args.port or settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=settings.workers,
        runtime_threads=settings.runtime_threads,
        backlog=settings.backlog,
        backpressure=settings.backpressure,
        http=HTTPModes(settings.http),
        workers_kill_timeout=int(settings.drain_seconds),
        log_access=False,
    )
    server.serve()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    _migrate(_database_url(settings))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.runner import main as bench_main

    code: int = bench_main(list(args.rest))
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sevenp", description="7P Education Platform API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (embedded defaults when unset)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)

    bench = commands.add_parser("bench", help="run the capacity-planning harness")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
