"""Environment of the server under test: production mode, with budgets that do not reject load.

The rate limiter stays on (its cost is part of every figure) but its budgets are raised far above
what the harness sends, so closed-loop runs measure throughput rather than 429s. Each policy keeps
its default window (what the limiter's sync does with a key depends on it) with a limit of one
unit per microsecond, the most a GCRA in microseconds takes. Anything here can be overridden with
``--server-env-var KEY=VALUE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from benchmarks.servers import GranianSettings


def unlimited_rate(window_seconds: int) -> str:
    """A budget no run reaches, over `window_seconds`."""
    return f"{window_seconds * 1_000_000}/{window_seconds}"


def server_environment(
    *,
    database_url: str,
    redis_url: str,
    sevenp_env: str,
    jwt_secret: str,
    settings: GranianSettings,
    pool_size: int,
    mail_dir: Path,
    overrides: Mapping[str, str] = {},
) -> dict[str, str]:
    """Variables handed to the server process."""
    mail_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "SEVENP_ENV": sevenp_env,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": jwt_secret,
        "MAIL_URL": f"file://{mail_dir.resolve()}",
        "WORKERS": str(settings.workers),
        "RUNTIME_THREADS": str(settings.runtime_threads),
        "BACKLOG": str(settings.backlog),
        "BACKPRESSURE": str(settings.backpressure),
        "DB_POOL_MAX": str(pool_size),
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_GENERAL": unlimited_rate(900),
        "RATE_LIMIT_API": unlimited_rate(60),
        "RATE_LIMIT_AUTH": unlimited_rate(900),
        "MAX_FAILED_LOGINS": "1000000",
    }
    env.update(overrides)
    return env


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> dict; raises ValueError on a pair without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out
