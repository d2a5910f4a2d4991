"""The `sevenp` command: serve, migrate, create-user, unlock-user, set-role, seed-demo, bench."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from server.errors import ApplicationError
from server.security.tokens import generate_hs256_secret
from server.services.provisioning import create_user
from server.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from litestar import Litestar

    from server.db.unit import Database
    from server.services.demo_data import DemoRun, DemoSizes

logger = logging.getLogger("sevenp.cli")


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"sevenp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _database_url(settings: Settings) -> str:
    """The configured database, or the embedded one."""
    if settings.database_url:
        return settings.database_url
    from server.db.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def _migrate(url: str) -> None:
    from server.db.migrate import apply_migrations

    applied = asyncio.run(apply_migrations(url))
    logger.info("migrations applied: %s", applied or "none pending")


def cmd_serve(args: argparse.Namespace) -> int:
    from server.launcher import serve

    settings = _settings_or_exit()

    def prepare(settings: Settings) -> Settings:
        assert settings.database_url is not None
        _migrate(settings.database_url)
        # The workers get these settings as they are, never through the environment.
        return msgspec.structs.replace(settings, jwt_secret=_jwt_secret(settings))

    return serve(
        settings, host=args.host or settings.host, port=args.port or settings.port, prepare=prepare
    )


def worker_app(settings: Settings, main_pid: int) -> Litestar:
    """Run in each Granian worker; an escalation there stops the serving process `main_pid`."""
    from server.app import create_app

    return create_app(settings, main_pid=main_pid)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    _migrate(_database_url(settings))
    return 0


def _jwt_secret(settings: Settings) -> str | None:
    """The configured secret; outside production an unset one is made once, kept in the data dir."""
    if settings.jwt_secret or settings.jwt_private_key_file or settings.is_production:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_hs256_secret())
        path.chmod(0o600)
    return path.read_text().strip()


def cmd_create_user(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    url = _database_url(settings)
    _migrate(url)
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    try:
        user_id = asyncio.run(
            create_user(
                url,
                email=args.email,
                password=password,
                first_name=args.first_name,
                last_name=args.last_name,
                role=args.role,
                settings=settings,
            )
        )
    except ApplicationError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details or [])
        print(f"sevenp: {exc.message}{' (' + details + ')' if details else ''}", file=sys.stderr)
        return 1
    print(user_id)
    return 0


def cmd_unlock_user(args: argparse.Namespace) -> int:
    from server.services.provisioning import unlock_user

    return _run_account_command(partial(unlock_user, email=args.email))


def cmd_set_role(args: argparse.Namespace) -> int:
    from schemas.users import Role
    from server.services.provisioning import set_role

    return _run_account_command(partial(set_role, email=args.email, role=Role(args.role)))


def _run_account_command(command: Callable[[Database], Awaitable[str]]) -> int:
    """Run `command` on a small pool of the configured database; print the account's id."""
    from server.db.pool import create_pool
    from server.db.unit import Database

    settings = _settings_or_exit()
    url = _database_url(settings)
    _migrate(url)

    async def run() -> str:
        async with create_pool(settings, url) as pool:
            return await command(Database(pool))

    try:
        user_id = asyncio.run(run())
    except ApplicationError as exc:
        print(f"sevenp: {exc.message}", file=sys.stderr)
        return 1
    print(user_id)
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from server.services.demo_data import DemoSizes

    settings = _settings_or_exit()
    url = _database_url(settings)
    _migrate(url)
    sizes = DemoSizes(
        teachers=args.teachers,
        students=args.students,
        courses=args.courses,
        lessons_per_course=args.lessons,
        enrollments_per_student=args.enrollments,
    )
    run = asyncio.run(_seed_demo(settings, url, sizes))
    print(
        f"demo data {run.run}: {sizes.teachers} teachers, {sizes.students} students,"
        f" {sizes.courses} courses\n"
        f"  sign in as {run.first_teacher} or {run.first_student}"
        f" with the password {run.password!r}"
    )
    return 0


async def _seed_demo(settings: Settings, url: str, sizes: DemoSizes) -> DemoRun:
    from tqdm import tqdm

    from server.db.pool import create_pool
    from server.db.unit import Database
    from server.security.passwords import password_hasher
    from server.services.demo_data import seed_demo, work_units

    hasher = password_hasher(settings, max_concurrency=1)
    async with create_pool(settings, url) as pool:
        with tqdm(total=work_units(sizes), unit="rows", desc="demo data") as bar:

            def advance(step: str, done: int) -> None:
                bar.set_postfix_str(step)
                bar.update(done)

            return await seed_demo(Database(pool), hasher, sizes, advance)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    """The harness lives in the repository's `benchmarks/`, which the wheel does not carry."""
    try:
        from benchmarks.runner import main as bench_main
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "benchmarks":
            raise
        print(
            "sevenp: bench runs from a checkout of the repository (uv run sevenp bench)",
            file=sys.stderr,
        )
        return 2
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

    create = commands.add_parser("create-user", help="create an account; password on stdin")
    create.add_argument("--email", required=True)
    create.add_argument("--first-name", required=True)
    create.add_argument("--last-name", required=True)
    create.add_argument("--role", choices=["student", "teacher", "admin"], default="student")
    create.set_defaults(handler=cmd_create_user)

    unlock = commands.add_parser(
        "unlock-user", help="reactivate an account and lift its login lockout"
    )
    unlock.add_argument("--email", required=True)
    unlock.set_defaults(handler=cmd_unlock_user)

    set_role = commands.add_parser(
        "set-role", help="change an account's role and end its sessions (refuses the last admin)"
    )
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--role", choices=["student", "teacher", "admin"], required=True)
    set_role.set_defaults(handler=cmd_set_role)

    seed = commands.add_parser(
        "seed-demo", help="add a realistic demo data set (teachers, students, courses, ...)"
    )
    seed.add_argument("--teachers", type=_positive, default=20)
    seed.add_argument("--students", type=_count, default=500)
    seed.add_argument("--courses", type=_count, default=1000)
    seed.add_argument("--lessons", type=_positive, default=5, help="lessons per course")
    seed.add_argument("--enrollments", type=_count, default=4, help="enrollments per student")
    seed.set_defaults(handler=cmd_seed_demo)

    bench = commands.add_parser(
        "bench", help="run the capacity-planning harness (see `sevenp bench --help`)"
    )
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # The harness parses its own flags (`sevenp bench --help`).
        return cmd_bench(argparse.Namespace(rest=arguments[1:]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(arguments)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
