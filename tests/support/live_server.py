"""A real Granian process serving the app, for tests that speak HTTP over sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

from server.granian_options import GranianOptions
from server.settings import load_settings
from tests.support.services import free_port
from tests.support.waiting import eventually_sync

ROOT = Path(__file__).resolve().parents[2]
# One namespace per test run: the machine's Redis outlives runs, and limits last 15 minutes.
RUN_REDIS_PREFIX = f"sevenp-test-{uuid.uuid4().hex[:8]}:"
TEST_JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4


class LiveServer:
    """`sevenp`'s app under Granian on a free port, with the given environment."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 1) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SEVENP_ENV": "test",
            "JWT_SECRET": TEST_JWT_SECRET,
            "HEALTH_INTERVAL_SECONDS": "0.5",
            "REDIS_PREFIX": RUN_REDIS_PREFIX,
            "HEALTH_PROBE_TIMEOUT_SECONDS": "1",
            # Suites make many accounts from one address; rate-limit tests set their own.
            "RATE_LIMIT_GENERAL": "1000000/900",
            "RATE_LIMIT_API": "1000000/60",
            "RATE_LIMIT_AUTH": "1000000/900",
            **env,
        }
        self._workers = workers
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"sevenp-test-server-{self.port}.log"

    def start(self, *, wait_ready: bool = True, timeout: float = 30.0) -> LiveServer:
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
            "--factory", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self._workers), "--no-access-log", "--log-level", "warning",
            *GranianOptions.of(load_settings(self.env)).command_line(),
            "server.app:create_app",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            proc = self._proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        path = "/health/ready" if wait_ready else "/health/live"

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                return httpx.get(self.base_url + path, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            eventually_sync(answers, within=timeout, poll=0.1)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"server not ready in {timeout}s:\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def signal(self, signum: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self._proc is not None
        return self._proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        code = self._proc.returncode
        self._proc = None
        return code
