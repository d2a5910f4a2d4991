"""Tests of verdicts, the Markdown report, result round trips and --compare deltas."""

import json
from pathlib import Path

import pytest

from benchmarks.compare import compare, format_deltas
from benchmarks.report import render_markdown, write_outputs
from benchmarks.results import RunRecord, ScenarioResult, evaluate
from benchmarks.scenarios import PROFILES, Check, build_scenarios


def test_evaluate_statuses() -> None:
    checks = (Check("ratio", ">=", 0.6), Check("errors", "==", 0))
    status, outcomes, reason = evaluate({"ratio": 0.7, "errors": 0}, checks)
    assert status == "pass"
    assert reason == ""
    assert [o.passed for o in outcomes] == [True, True]
    status, outcomes, reason = evaluate({"ratio": 0.5, "errors": 0}, checks)
    assert status == "fail"
    assert "ratio = 0.5, target >= 0.6" in reason
    status, _, reason = evaluate({"errors": 0}, checks)
    assert status == "fail"
    assert "missing" in reason
    assert evaluate({"rps": 1.0}, ())[0] == "info"
    assert evaluate({"ratio": 0.9, "errors": 0}, checks, valid=False)[0] == "invalid"


def _run() -> RunRecord:
    record = RunRecord(started_at="2026-01-01T00:00:00+00:00", profile="quick")
    record.environment = {"cpu_model": "Test CPU", "cpu_usable": 2, "versions": {"granian": "2.8"}}
    record.settings = {"granian": {"workers": 1, "runtime_threads": 1, "loop": "uvloop"}}
    record.ceilings["json"] = ScenarioResult(
        "json", "wrk", "bare JSON", status="info", metrics={"rps": 40000.0, "p99_ms": 4.0}
    )
    me = ScenarioResult(
        "auth-me",
        "wrk",
        ceiling="json",
        targets=["ratio >= 0.6"],
        metrics={"rps": 30000.0, "ceiling_rps": 40000.0, "p50_ms": 1.0, "p99_ms": 5.0},
    )
    me.metrics.update({"ratio": 0.75, "ratio_min": 0.7, "ratio_max": 0.8, "errors": 0})
    me.status, me.checks, _ = evaluate(me.metrics, (Check("ratio", ">=", 0.6),))
    record.scenarios.append(me)
    record.scenarios.append(
        ScenarioResult("users-profile", "wrk", status="pending", reason="pending: seeding")
    )
    loop = ScenarioResult(
        "open-loop-sessions",
        "open-loop",
        metrics={"sessions": 2000, "achieved_rps": 1000.0, "p99_ms": 9.0, "valid": 1.0},
    )
    loop.status = "pass"
    loop.details["search"] = {
        "steps": [{"sessions": 2000, "passed": True, "reason": "ok"}],
        "stopped": "every count passed",
    }
    loop.metrics["max_sessions"] = 2000
    record.scenarios.append(loop)
    return record


def test_markdown_report_shape() -> None:
    md = render_markdown(_run().to_dict())
    assert md.startswith("# sevenp capacity benchmark")
    assert "## Ceilings" in md
    assert "| json | bare JSON | 40,000 |" in md
    assert "## Scenarios" in md
    row = next(line for line in md.splitlines() if line.startswith("| auth-me "))
    assert "30,000" in row
    assert "0.75 (0.70-0.80)" in row
    assert "ratio >= 0.6" in row
    assert "**PASS**" in row
    pending = next(line for line in md.splitlines() if line.startswith("| users-profile "))
    assert "pending" in pending
    assert "## Open-loop runs" in md
    assert "Session search" in md
    assert "pending: seeding" in md
    header = next(line for line in md.splitlines() if line.startswith("| scenario | req/s"))
    separator = md.splitlines()[md.splitlines().index(header) + 1]
    assert header.count("|") == separator.count("|") == row.count("|")


def test_record_round_trip_and_outputs(tmp_path: Path) -> None:
    run = _run()
    data = json.loads(json.dumps(run.to_dict()))
    again = RunRecord.from_dict(data)
    assert again.scenarios[0].checks[0].passed
    assert again.summary() == {"pass": 2, "pending": 1}
    paths = write_outputs(run.to_dict(), tmp_path, plots=False)
    assert (tmp_path / "results.json").exists()
    assert (tmp_path / "report.md").read_text().startswith("# sevenp")
    write_outputs(run.to_dict(), tmp_path, plots=False)
    assert (tmp_path / "previous.json").exists()
    assert len(paths) == 2


def test_compare_deltas() -> None:
    old = _run().to_dict()
    new_record = _run()
    new_record.scenarios[0].metrics["rps"] = 33000.0
    new_record.scenarios[0].status = "fail"
    new = new_record.to_dict()
    deltas = {d.figure: d for d in compare(old, new)}
    assert deltas["auth-me.rps"].change_pct == pytest.approx(10.0)
    assert deltas["ceiling json.rps"].change_pct == pytest.approx(0.0)
    assert "users-profile.rps" not in deltas
    table = format_deltas(list(deltas.values()))
    assert "| auth-me.rps | 30,000 | 33,000 | +10.0% | pass -> fail |" in table


def test_profiles_build_scenarios() -> None:
    quick = build_scenarios(PROFILES["quick"])
    full = build_scenarios(PROFILES["full"], soak=True)
    names = [s.name for s in quick]
    assert "open-loop-json-ceiling" not in names
    assert names.index("not-limited") < names.index("rate-limited")
    assert {"open-loop-json-ceiling", "soak"} <= {s.name for s in full}
    by_name = {s.name: s for s in full}
    assert by_name["open-loop-sessions"].search
    assert by_name["auth-me"].needs_tokens
    assert not by_name["health-live"].needs_tokens
    assert not by_name["open-loop-json-ceiling"].needs_server


def test_markdown_report_has_the_exports_table() -> None:
    export = ScenarioResult(
        "export-enrollments",
        "export",
        ceiling="copy",
        status="pass",
        metrics={"rows": 200000, "rps": 100000.0, "ceiling_rps": 300000.0, "ratio": 0.333,
                 "ttfb_ms": 41.0, "ttfb_median_ms": 39.0, "copy_ttfb_ms": 5.0,
                 "rss_growth_mib": 0.9, "seconds": 2.0, "copy_seconds": 0.67},
    )  # fmt: skip
    record = _run()
    record.scenarios.append(export)
    text = render_markdown(record.to_dict())
    assert "## Exports" in text
    assert "| export-enrollments | 200,000 | 100,000 | 300,000 | 0.33 | 41 (39) | 5 | 0.9 |" in text
