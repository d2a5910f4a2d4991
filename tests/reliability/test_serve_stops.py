"""`sevenp serve` always stops within its budget, whatever the signal timing, and leaves no PostgreSQL."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.serve import start_serve
from tests.support.waiting import eventually_sync

DRAIN_SECONDS = 2.0
# DRAIN_SECONDS + 3 s before the launcher kills Granian, then up to 2 x 5 s of PostgreSQL stop
# in the worst case; a healthy one stops in well under a second.
STOP_BOUND_SECONDS = DRAIN_SECONDS + 3 + 4


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_serve(workdir, {"DRAIN_SECONDS": str(DRAIN_SECONDS)})


def _tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def _postgres(workdir: Path) -> list[psutil.Process]:
    data = str(workdir / ".data" / "postgres")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and data in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


def _stop_as_a_service_manager_does(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM to every process of the tree at once, again and again until the server is gone."""
    started = time.monotonic()
    while proc.poll() is None:
        assert time.monotonic() - started < STOP_BOUND_SECONDS + 30, "the stop hangs"
        for process in _tree(proc.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.02)
    return time.monotonic() - started


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sevenp-stops-") as tmp:
        path = Path(tmp)
        try:
            yield path
        finally:
            for process in _postgres(path):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()


def _stop_rounds(workdir: Path, rounds: int) -> None:
    for _ in range(rounds):
        proc, _base = _start(workdir)
        tree = _tree(proc.pid)
        took = _stop_as_a_service_manager_does(proc)
        assert took < STOP_BOUND_SECONDS, (took, (workdir / "serve.log").read_text()[-3000:])
        eventually_sync(lambda tree=tree: _gone(tree), within=5)
        assert _postgres(workdir) == []


def test_signals_to_every_process_stop_within_the_budget_and_stop_postgres(workdir: Path) -> None:
    _stop_rounds(workdir, rounds=2)


@pytest.mark.slow
def test_ten_rounds_of_signals_to_every_process(workdir: Path) -> None:
    _stop_rounds(workdir, rounds=10)


def test_after_a_hard_kill_postgres_stops_and_the_next_start_is_clean(workdir: Path) -> None:
    proc, _base = _start(workdir)
    tree = _tree(proc.pid)
    proc.kill()  # the launcher alone
    proc.wait(10)
    # The guard stops PostgreSQL, and Granian follows its launcher.
    eventually_sync(lambda: _postgres(workdir) == [], within=STOP_BOUND_SECONDS)
    eventually_sync(lambda: _gone(tree), within=STOP_BOUND_SECONDS)

    proc, _base = _start(workdir)
    tree = _tree(proc.pid)
    for process in tree:  # the whole tree, guard included: PostgreSQL is left running
        process.kill()
    proc.wait(10)
    eventually_sync(lambda: _gone(tree), within=10)
    assert _postgres(workdir)

    proc, base = _start(workdir)
    assert httpx.get(base + "/health/ready", timeout=5).status_code == 200
    assert _stop_as_a_service_manager_does(proc) < STOP_BOUND_SECONDS
    assert _postgres(workdir) == []
