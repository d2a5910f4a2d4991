"""`sevenp serve` as a user runs it: in a directory of its own, with nothing configured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.services import free_port
from tests.support.waiting import eventually_sync

# What the test run sets for its own servers and a bare `sevenp serve` must not see.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "SEVENP_ENV", "PORT", "DATA_DIR")


def start_serve(
    workdir: Path, env: Mapping[str, str] | None = None, *, within: float = 90
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `sevenp serve` in `workdir` (log in `serve.log`); its process and base URL once
    it is ready."""
    environment = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    environment.update(env or {})
    port = free_port()
    log = workdir / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            cwd=workdir, env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(base + "/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually_sync(ready, within=within, poll=0.2)
    except TimeoutError:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"not ready in {within:g} s:\n" + log.read_text()) from None
    return proc, base
