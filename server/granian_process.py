"""Granian's main process under `sevenp serve`: server/launcher.py starts it, nothing else."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from functools import partial

import msgspec

from server.launcher import STOP_SIGNALS, Launch

_PR_SET_PDEATHSIG = 1


def main() -> int:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    from server.cli import worker_app
    from server.granian_options import GranianOptions

    launch = msgspec.json.decode(sys.stdin.buffer.read(), type=Launch)
    # The launcher's blocked signals are inherited; Granian handles its own.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS | {signal.SIGCHLD})
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != launch.launcher_pid:
        return 1
    settings = launch.settings
    server = Server(
        "server.app:create_app",
        factory=True,
        address=launch.host,
        port=launch.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=settings.workers,
        runtime_threads=settings.runtime_threads,
        log_access=False,
        **GranianOptions.of(settings).server_arguments(),
    )
    server.serve(target_loader=partial(worker_app, settings, os.getpid()), wrap_loader=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
