"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is given.

`sevenp serve` keeps it under a guard process (`python -m server.db.embedded PGDATA`,
stdin a pipe from the server): the guard ignores stop signals and stops PostgreSQL when
that pipe closes, which happens however the server ends, SIGKILL included. A start finds
a PostgreSQL left running under the data dir by a server that is gone (a guard killed too,
say) and stops it before starting afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

logger = logging.getLogger("sevenp.embedded")
logging.getLogger("pgserver").setLevel(logging.WARNING)

_STOP_SECONDS = 5
_HANDLES = ".handle_pids.json"


def postgres_dir(data_dir: str) -> Path:
    return Path(data_dir).resolve() / "postgres"


def start_embedded_postgres(data_dir: str, *, stop_at_exit: bool = True) -> str:
    """Start (or reuse) a PostgreSQL kept under `data_dir`/postgres; return its URL.

    With `stop_at_exit`, the server stops when the last process using it exits.
    """
    from pgserver.postgres_server import get_server

    path = postgres_dir(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    stop_stale_postgres(path)
    server = get_server(path, cleanup_mode="stop" if stop_at_exit else None)
    url: str = server.get_uri("postgres")
    logger.info("embedded PostgreSQL under %s", path)
    return url


def _postmaster(path: Path) -> psutil.Process | None:
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError, psutil.Error):
        process = psutil.Process(int((path / "postmaster.pid").read_text().split()[0]))
        if process.name() == "postgres":
            return process
    return None


def _live_handles(path: Path, *, besides: int | None = None) -> list[int]:
    """Processes pgserver counts as using the server, still alive, but this one and `besides`."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        pids = json.loads((path / _HANDLES).read_text())
        gone = {os.getpid(), besides}
        return [p for p in pids if p not in gone and psutil.pid_exists(p)]
    return []


def stop_stale_postgres(path: Path) -> None:
    """Stop a PostgreSQL running under `path` that no live process uses any more."""
    if _postmaster(path) is None or _live_handles(path):
        return
    logger.warning("stopping a PostgreSQL left running under %s", path)
    stop_postgres(path)
    (path / _HANDLES).unlink(missing_ok=True)


def stop_postgres(path: Path) -> None:
    """Fast shutdown, then immediate, then SIGKILL: each bounded, so this always returns.

    Signals straight to the postmaster rather than `pg_ctl`, which a stop signal meant for
    the server would kill halfway.
    """
    postmaster = _postmaster(path)
    if postmaster is None:
        return
    children = postmaster.children(recursive=True)
    for signum in (signal.SIGINT, signal.SIGQUIT):
        with contextlib.suppress(psutil.NoSuchProcess):
            postmaster.send_signal(signum)
        with contextlib.suppress(psutil.TimeoutExpired):
            postmaster.wait(_STOP_SECONDS)
            return
    for process in (postmaster, *children):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs([postmaster, *children], timeout=_STOP_SECONDS)


def start_guard(path: Path) -> subprocess.Popen[bytes]:
    """The guard of the PostgreSQL under `path`: it stops it once the returned stdin closes."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "server.db.embedded", str(path), str(os.getpid())],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )


def _guard(path: Path, server_pid: int) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    while sys.stdin.buffer.read(4096):
        pass
    if not _live_handles(path, besides=server_pid):
        stop_postgres(path)
        (path / _HANDLES).unlink(missing_ok=True)


if __name__ == "__main__":
    _guard(Path(sys.argv[1]), int(sys.argv[2]))
