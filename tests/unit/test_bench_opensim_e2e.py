"""End to end: the JSON ceiling under Granian, loaded by the open-loop simulator on real sockets."""

from pathlib import Path

import pytest

from benchmarks.opensim.mix import MixEntry
from benchmarks.opensim.simulate import OpenLoopConfig, run_open_loop
from benchmarks.servers import GranianServer
from benchmarks.tools import free_port


@pytest.mark.timeout(60)
def test_open_loop_against_json_ceiling(tmp_path: Path) -> None:
    server = GranianServer(
        "benchmarks.ceilings:json_app",
        port=free_port(),
        health_path="/ready",
        log_path=tmp_path / "granian.log",
    )
    with server.start(ready_timeout=20):
        assert server.processes()
        config = OpenLoopConfig(
            host=server.host,
            port=server.port,
            sessions=50,
            ramp_s=0.5,
            steady_s=3.0,
            interval_s=0.1,
            timeout_s=5.0,
            mix=(MixEntry(1, "GET", "/json", auth=False),),
        )
        result = run_open_loop(config)
    assert server.processes() == []
    summary = result.summary()
    assert summary["errors"] == 0, summary
    assert result.stats.completed > 300  # ~500 intended per second for 3 s
    assert result.stats.statuses.keys() == {"200"}
    assert 0.5 < result.achieved_rps / result.offered_rps <= 1.05
    latency = summary["latency"]
    assert 0 < latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["p99_ms"] < 1000
    assert result.stats.connects == 50
