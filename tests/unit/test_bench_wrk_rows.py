"""End to end: ``lua/rows.lua`` sends each row once across wrk runs that share an offset file."""

import shutil
from pathlib import Path

import pytest

from benchmarks.servers import GranianServer
from benchmarks.tools import free_port
from benchmarks.wrk import WrkJob, run_wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


@pytest.mark.timeout(60)
def test_runs_continue_where_the_previous_one_stopped(tmp_path: Path) -> None:
    rows = tmp_path / "rows.txt"
    rows.write_text("".join(f"/json?row={i}\ttoken-{i}\n" for i in range(100_000)))
    offset = tmp_path / "offset.txt"
    server = GranianServer(
        "benchmarks.ceilings:json_app",
        port=free_port(),
        health_path="/ready",
        log_path=tmp_path / "granian.log",
    )
    with server.start(ready_timeout=20):
        job = WrkJob(
            url=server.base_url + "/",
            connections=4,
            duration_s=1,
            rows_file=rows,
            offset_file=offset,
        )
        first = run_wrk(job)
        after_first = int(offset.read_text())
        second = run_wrk(job)
        after_second = int(offset.read_text())
    assert first.errors.total == second.errors.total == 0
    # Each run starts where the previous one stopped, having used about one row per request
    # (a connection may have one request in flight when a run ends, or be closed mid-reply).
    counts = (first.requests, after_first, second.requests, after_second)
    slack = 2 * job.connections
    assert abs(after_first - first.requests) <= slack, counts
    assert abs(after_second - after_first - second.requests) <= slack, counts
    assert after_second > after_first > 0, counts
