"""`GET /metrics` of a two-worker server shows both workers' requests, whichever answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.waiting import eventually_sync

COUNT = re.compile(
    r"^http_server_request_duration_seconds_count\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M
)


@pytest.fixture(scope="module")
def two_workers(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WORKERS": "2",
            "METRICS_SHARE_SECONDS": "0.2",
            "METRICS_DIR": str(tmp_path_factory.mktemp("metrics")),
            "LOG_FORMAT": "json",
        },
        workers=2,
    ).start()
    yield server
    server.stop()


def _live_counts(text: str) -> dict[str, float]:
    """Requests to /health/live by worker label."""
    counts: dict[str, float] = {}
    for found in COUNT.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found["labels"]))
        if labels.get("http_route") == "/health/live":
            worker = labels["worker"]
            counts[worker] = counts.get(worker, 0) + float(found["value"])
    return counts


def test_a_scrape_shows_the_requests_of_both_workers(two_workers: LiveServer) -> None:
    sent = 0

    def both_seen() -> bool:
        nonlocal sent
        for _ in range(10):
            # A new connection each time, so that both workers take some.
            with httpx.Client(base_url=two_workers.base_url) as client:
                assert client.get("/health/live").status_code == 200
            sent += 1
        scrape = httpx.get(two_workers.base_url + "/metrics", timeout=5)
        assert scrape.status_code == 200
        return len(_live_counts(scrape.text)) == 2

    eventually_sync(both_seen, within=30, poll=0.1)
    text = httpx.get(two_workers.base_url + "/metrics", timeout=5).text
    counts = _live_counts(text)
    assert all(count >= 1 for count in counts.values())
    assert sum(counts.values()) <= sent
    for name in (
        "http_server_active_requests",
        "db_client_connection_count",
        "db_client_operation_duration_seconds_count",
        "sevenp_actor_mailbox_depth",
        "sevenp_ratelimit_decisions_total",
        "sevenp_cache_lookups_total",
        "sevenp_sessions_held",
        "sevenp_mail_outbox_depth",
        "process_memory_usage_bytes",
    ):
        workers = set(re.findall(rf'^{name}\{{[^}}]*worker="(\d+)"', text, re.M))
        assert len(workers) == 2, name
    memory = re.findall(r"^process_memory_usage_bytes\{[^}]*\} (\S+)$", text, re.M)
    assert all(float(value) > 10_000_000 for value in memory)


def test_the_snapshots_live_in_one_directory_per_server(two_workers: LiveServer) -> None:
    base = Path(two_workers.env["METRICS_DIR"])
    [server_dir] = [path for path in base.iterdir() if path.is_dir()]
    assert server_dir.name == str(two_workers.pid)
    assert len(list(server_dir.glob("*.json"))) == 2
