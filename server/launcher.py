"""`sevenp serve`'s first process: owns the stop signals, the deadline and the embedded database.

Granian's main process can deadlock on a stop signal (its handler sets a `threading.Event`
whose lock the interrupted main thread may hold), so it runs as a child, in a process
group of its own. This process installs no signal handler at all: the stop signals stay
blocked and are taken with `sigtimedwait`, so there is nothing to re-enter. The first one
is forwarded to Granian; if Granian is not gone `DRAIN_SECONDS` + 3 s later, its whole
process group is killed. The embedded PostgreSQL is stopped last, on every way out
(server/db/embedded.py covers this process being killed).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import msgspec

from server.granian_options import launcher_deadline_seconds
from server.settings import Settings

logger = logging.getLogger("sevenp.launcher")

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_WATCHED = STOP_SIGNALS | {signal.SIGCHLD}


class Launch(msgspec.Struct, frozen=True):
    """What the Granian process is told, on its stdin (never through the environment)."""

    settings: Settings
    host: str
    port: int
    launcher_pid: int


def serve(
    settings: Settings, *, host: str, port: int, prepare: Callable[[Settings], Settings]
) -> int:
    """Serve until a stop signal; `prepare` readies the database and returns the final settings."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    guard: subprocess.Popen[bytes] | None = None
    try:
        if settings.database_url is None:
            from server.db.embedded import postgres_dir, start_embedded_postgres, start_guard

            url = start_embedded_postgres(settings.data_dir, stop_at_exit=False)
            guard = start_guard(postgres_dir(settings.data_dir))
            settings = msgspec.structs.replace(settings, database_url=url)
        settings = prepare(settings)
        if STOP_SIGNALS & signal.sigpending():
            return 0
        return _run_granian(Launch(settings, host, port, os.getpid()))
    finally:
        if guard is not None:
            assert guard.stdin is not None
            guard.stdin.close()
            guard.wait()


def _run_granian(launch: Launch) -> int:
    granian = subprocess.Popen(
        [sys.executable, "-m", "server.granian_process"],
        stdin=subprocess.PIPE,
        process_group=0,
    )
    assert granian.stdin is not None
    with granian.stdin:
        granian.stdin.write(msgspec.json.encode(launch))
    deadline: float | None = None
    while granian.poll() is None:
        wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is not None and wait == 0.0:
            logger.error("Granian still running %gs after the stop; killing it", _budget(launch))
            os.killpg(granian.pid, signal.SIGKILL)
            granian.wait()
            return 1
        received = signal.sigtimedwait(_WATCHED, min(wait, 1.0))
        if received is not None and received.si_signo in STOP_SIGNALS and deadline is None:
            deadline = time.monotonic() + _budget(launch)
            granian.send_signal(signal.SIGTERM)
    # Workers outliving Granian's main process (killed, say) go with it.
    with_group_gone(granian.pid)
    return granian.returncode


def _budget(launch: Launch) -> float:
    return launcher_deadline_seconds(launch.settings)


def with_group_gone(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
