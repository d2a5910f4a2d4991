"""Start, watch and stop one Granian server process tree (ceilings and the server under test).

The Granian parent runs in its own session, so a terminal Ctrl-C reaches only the harness, which
then stops it here: SIGTERM to the parent, SIGKILL to its process group after a timeout. Every
started server is also registered for an ``atexit`` backstop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


@dataclass(frozen=True)
class GranianSettings:
    """Granian flags shared by the ceilings and the server under test."""

    workers: int = 1
    runtime_threads: int = 1
    backlog: int = 4096
    # Granian's backpressure caps the connections a worker accepts (not only requests in flight),
    # so it must exceed the held sessions of the open-loop runs (and stay below the fd limit).
    backpressure: int = 19_000
    loop: str = "uvloop"
    extra: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Settings for the results file."""
        return {
            "workers": self.workers,
            "runtime_threads": self.runtime_threads,
            "backlog": self.backlog,
            "backpressure": self.backpressure,
            "loop": self.loop,
            "extra": list(self.extra),
        }


class ServerStartError(RuntimeError):
    """The server exited or never answered its health URL."""


def granian_command(
    target: str, *, settings: GranianSettings, host: str, port: int, factory: bool
) -> list[str]:
    """The Granian command line for ``target``."""
    cmd = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        settings.loop,
        "--workers",
        str(settings.workers),
        "--runtime-threads",
        str(settings.runtime_threads),
        "--backlog",
        str(settings.backlog),
        "--backpressure",
        str(settings.backpressure),
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        *settings.extra,
    ]
    if factory:
        cmd.append("--factory")
    cmd.append(target)
    return cmd


_LIVE: set[GranianServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()


@dataclass
class GranianServer:
    """One Granian process tree; use as a context manager so it is always stopped."""

    target: str
    port: int
    settings: GranianSettings = field(default_factory=GranianSettings)
    factory: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    health_path: str = "/health/ready"
    log_path: Path | None = None
    cwd: Path = PROJECT_ROOT
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: object = field(default=None, init=False, repr=False)

    def __hash__(self) -> int:
        return id(self)

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of the Granian parent, while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self, ready_timeout: float = 30.0) -> GranianServer:
        """Spawn Granian and block until the health URL answers 2xx."""
        cmd = granian_command(
            self.target,
            settings=self.settings,
            host=self.host,
            port=self.port,
            factory=self.factory,
        )
        env = {**os.environ, **self.env}
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")  # a restarted server keeps its earlier log
        else:
            log = subprocess.DEVNULL  # type: ignore[assignment]
        self._log = log
        self._proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _LIVE.add(self)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        url = self.base_url + self.health_path
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.target} exited with {code} before it was ready "
                    f"({self.log_error_line()}); see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if 200 <= resp.status < 300:
                        return
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise ServerStartError(
            f"{self.target} not ready at {url} after {timeout:.0f}s ({last_error}; "
            f"{self.log_error_line()}); see {self.log_path}"
        )

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log file, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace").strip()

    def log_error_line(self) -> str:
        """The first exception line of the log (the root cause of a failed start), if any."""
        text = self.log_tail(20_000)
        for line in text.splitlines():
            if _EXC_LINE.match(line):
                return line.strip()[:300]
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip()[:300] if lines else "no log output"

    def processes(self) -> list[psutil.Process]:
        """The Granian parent and all of its descendants (workers)."""
        if self._proc is None or self._proc.poll() is not None:
            return []
        try:
            parent = psutil.Process(self._proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the parent, then SIGKILL the whole process group if it outlives ``timeout``."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
            # Workers that survived their parent (they share its process group).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._proc = None
        log = self._log
        if log is not None and hasattr(log, "close"):
            log.close()
        self._log = None
        _LIVE.discard(self)

    def __enter__(self) -> GranianServer:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
