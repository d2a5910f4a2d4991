"""Tests of the invalid-run rule and of the largest-session-count search."""

from benchmarks.opensim.histogram import Histogram
from benchmarks.opensim.search import SessionTarget, find_max_sessions, judge_run
from benchmarks.opensim.simulate import OpenLoopResult, plan_process_count
from benchmarks.opensim.stats import RunStats
from benchmarks.opensim.validity import ValidityRule, judge_validity


def _judge(**overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "offered_rps": 5000.0,
        "achieved_rps": 4990.0,
        "lag_p99_ms": 2.0,
        "service_p99_ms": 5.0,
        "worker_cpu": [0.2, 0.25],
        **overrides,
    }
    return judge_validity(**kwargs)  # type: ignore[arg-type]


def test_healthy_run_is_valid() -> None:
    assert _judge() == []


def test_saturated_generator_core_is_invalid() -> None:
    reasons = _judge(worker_cpu=[0.2, 0.95])
    assert len(reasons) == 1
    assert "process 1" in reasons[0]


def test_generator_lag_is_invalid() -> None:
    reasons = _judge(lag_p99_ms=80.0)
    assert len(reasons) == 1
    assert "lag" in reasons[0]


def test_under_delivery_with_fast_server_is_invalid() -> None:
    reasons = _judge(achieved_rps=4000.0)
    assert len(reasons) == 1
    assert "achieved" in reasons[0]


def test_under_delivery_with_slow_server_stays_valid() -> None:
    assert _judge(achieved_rps=3000.0, service_p99_ms=900.0) == []


def test_late_start_and_custom_rule() -> None:
    reasons = _judge(late_start_s=[0.0, 2.0], rule=ValidityRule(max_lag_p99_ms=1.0))
    assert any("lag" in r for r in reasons)
    assert any("started 2.00 s late" in r for r in reasons)


def test_process_count_respects_sockets_and_rate() -> None:
    assert plan_process_count(2000, 2.0, 8000, 4000) == 1
    assert plan_process_count(10_000, 2.0, 8000, 4000) == 2
    assert plan_process_count(17_500, 2.0, 8000, 4000) == 3
    assert plan_process_count(4000, 0.5, 8000, 4000) == 2


def _result(sessions: int, p99_us: float, errors: int = 0, invalid: bool = False) -> OpenLoopResult:
    stats = RunStats(latency=Histogram())
    for _ in range(100):
        stats.latency.record(p99_us)
    if errors:
        stats.errors["status_5xx"] = errors
    return OpenLoopResult(
        sessions=sessions,
        processes=1,
        ramp_s=1,
        steady_s=1,
        interval_s=2,
        stats=stats,
        worker_cpu=[0.1],
        late_start_s=[0.0],
        steady_start_wall=0.0,
        steady_end_wall=1.0,
        invalid_reasons=["generator lag"] if invalid else [],
    )


def test_judge_run() -> None:
    target = SessionTarget()
    assert judge_run(_result(10, 100_000), target)[0]
    assert not judge_run(_result(10, 300_000), target)[0]
    assert "errors" in judge_run(_result(10, 1000, errors=1), target)[1]
    assert judge_run(_result(10, 1000, invalid=True), target)[1].startswith("invalid")


def test_find_max_sessions_stops_at_first_failure() -> None:
    p99 = {10_000: 50_000, 12_500: 120_000, 15_000: 400_000, 17_500: 90_000}
    tried: list[int] = []

    def run(n: int) -> OpenLoopResult:
        tried.append(n)
        return _result(n, p99[n])

    outcome = find_max_sessions(run, [15_000, 10_000, 17_500, 12_500])
    assert tried == [10_000, 12_500, 15_000]
    assert outcome.best == 12_500
    assert "15000 sessions" in outcome.stopped
    assert [s["passed"] for s in outcome.steps] == [True, True, False]


def test_find_max_sessions_all_pass_and_none_pass() -> None:
    outcome = find_max_sessions(lambda n: _result(n, 1000), [1, 2])
    assert outcome.best == 2
    assert "may be higher" in outcome.stopped
    outcome = find_max_sessions(lambda n: _result(n, 1000, invalid=True), [1, 2])
    assert outcome.best is None


def test_generator_lag_with_slow_server_stays_valid() -> None:
    assert _judge(lag_p99_ms=120.0, service_p99_ms=9000.0, achieved_rps=2400.0) == []


def test_find_max_sessions_descends_when_the_first_count_fails() -> None:
    p99 = {10_000: 900_000, 5_000: 400_000, 2_500: 90_000}
    outcome = find_max_sessions(lambda n: _result(n, p99[n]), [10_000, 12_500], descend_to=1_250)
    assert [s["sessions"] for s in outcome.steps] == [10_000, 5_000, 2_500]
    assert outcome.best == 2_500
    assert "10000 sessions" in outcome.stopped
    none = find_max_sessions(lambda n: _result(n, 900_000), [4_000], descend_to=1_000)
    assert [s["sessions"] for s in none.steps] == [4_000, 2_000, 1_000]
    assert none.best is None
