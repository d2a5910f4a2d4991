"""Tests of the open-loop histogram and statistics: exact merges, percentile accuracy."""

import random

import pytest

from benchmarks.opensim.histogram import Histogram, bucket_of, bucket_upper_us
from benchmarks.opensim.stats import RunStats


def test_bucket_edges_are_increasing_and_bound_values() -> None:
    for value in (1.0, 1.5, 10.0, 999.0, 12_345.0, 3_000_000.0):
        i = bucket_of(value)
        assert value < bucket_upper_us(i)
        assert i == 0 or value >= bucket_upper_us(i - 1)
    assert bucket_of(0.1) == 0


def test_percentiles_within_bucket_resolution() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(1 / 5000) + 50 for _ in range(20_000)]
    hist = Histogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for q in (50, 90, 99):
        exact = ordered[int(len(ordered) * q / 100) - 1]
        assert hist.percentile_us(q) == pytest.approx(exact, rel=0.05)
    assert hist.max_us == max(values)
    assert hist.percentile_us(100) == max(values)
    assert hist.count == len(values)
    assert hist.mean_us == pytest.approx(sum(values) / len(values))


def test_merge_is_exact() -> None:
    rng = random.Random(3)
    parts = [[rng.lognormvariate(7, 1.2) for _ in range(1000)] for _ in range(4)]
    whole = Histogram()
    merged = Histogram()
    for part in parts:
        h = Histogram()
        for v in part:
            h.record(v)
            whole.record(v)
        merged.merge(Histogram.from_dict(h.to_dict()))
    assert merged.counts == whole.counts
    assert merged.count == whole.count
    assert merged.max_us == whole.max_us
    assert merged.min_us == whole.min_us
    for q in (50, 90, 99, 99.9):
        assert merged.percentile_us(q) == whole.percentile_us(q)


def test_empty_histogram() -> None:
    hist = Histogram()
    assert hist.percentile_us(99) == 0.0
    assert hist.summary_ms()["p99_ms"] == 0.0
    assert Histogram.from_dict(hist.to_dict()).count == 0


def test_run_stats_merge_and_round_trip() -> None:
    a, b = RunStats(), RunStats()
    a.latency.record(1000)
    a.intended, a.sent_in_window, a.completed = 10, 9, 9
    a.error("timeout", "GET /x", "slow")
    a.statuses["200"] += 9
    b.latency.record(3000)
    b.intended, b.sent_in_window, b.completed = 5, 5, 5
    b.error("status_5xx", "GET /x")
    b.statuses["200"] += 4
    b.statuses["503"] += 1
    merged = RunStats.from_dict(a.to_dict())
    merged.merge(RunStats.from_dict(b.to_dict()))
    assert merged.intended == 15
    assert merged.completed == 14
    assert merged.errors == {"timeout": 1, "status_5xx": 1}
    assert merged.error_total == 2
    assert merged.statuses == {"200": 13, "503": 1}
    assert merged.per_entry["GET /x"] == {"timeout": 1, "status_5xx": 1}
    assert merged.latency.count == 2
    assert merged.first_error == "timeout: slow"
