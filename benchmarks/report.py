"""Writes a run's outputs: results.json, report.md and the PNG plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks.plots import open_loop_plot, throughput_plot
from benchmarks.profiling import render as render_profile

VERDICT = {
    "pass": "**PASS**",
    "fail": "**FAIL**",
    "info": "info",
    "pending": "pending",
    "error": "**ERROR**",
    "invalid": "**INVALID**",
}


def _num(value: Any, fmt: str = ",.0f") -> str:
    if value is None or value == "":
        return "-"
    return format(float(value), fmt)


def _target(s: dict[str, Any]) -> str:
    targets = s.get("targets") or [
        f"{c['metric']} {c['op']} {c['limit']:g}" for c in s.get("checks", [])
    ]
    return ", ".join(targets) if targets else "-"


def _ratio(m: dict[str, Any]) -> str:
    if "ratio" not in m:
        return "-"
    if "ratio_min" in m:
        return f"{m['ratio']:.2f} ({m['ratio_min']:.2f}-{m['ratio_max']:.2f})"
    return f"{m['ratio']:.2f}"


def _env_lines(run: dict[str, Any]) -> list[str]:
    env = run.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
    g = run.get("settings", {}).get("granian", {})
    return [
        f"- Machine: {env.get('cpu_model', '?')}, {env.get('cpu_usable', '?')} usable cores, "
        f"{env.get('memory_mib', '?')} MiB, kernel {env.get('kernel', '?')}, "
        f"load {env.get('load_average', '?')} at start",
        f"- Python {env.get('python', '?')}; {versions}; {env.get('wrk') or 'wrk ?'}",
        f"- Git revision: {env.get('git_revision') or 'none'}; started {run.get('started_at')}, "
        f"took {run.get('duration_s', 0):.0f} s"
        + (" (**interrupted**)" if run.get("interrupted") else ""),
        f"- Granian: {g.get('workers')} worker(s), {g.get('runtime_threads')} runtime thread(s), "
        f"loop {g.get('loop')}, backlog {g.get('backlog')}, backpressure {g.get('backpressure')}",
    ]


def render_markdown(run: dict[str, Any]) -> str:
    """The human report of one run."""
    out = [f"# sevenp capacity benchmark - profile `{run.get('profile')}`", ""]
    out += _env_lines(run)
    summary = run.get("summary", {})
    out += [
        "",
        "**Verdicts:** " + (", ".join(f"{v} {k}" for k, v in sorted(summary.items())) or "none"),
        "",
    ]
    out += [
        "Every figure is a ratio to a ceiling measured in this run on this machine. Closed-loop",
        "scenarios alternate with their ceiling in short rounds; the ratio is the median round",
        "(range in brackets), the ceiling req/s the one measured alongside. Machine CPU is the",
        "whole machine's busy CPU (100 = one core) while the scenario ran: other work shares it.",
        "",
        "## Ceilings",
        "",
        "| ceiling | what | req/s | p50 ms | p99 ms | server CPU % | server RSS MiB "
        "| machine CPU % | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, c in run.get("ceilings", {}).items():
        m = c.get("metrics", {})
        note = c.get("reason", "")
        if "verify_ms_median" in m:
            note = f"argon2id verify {m['verify_ms_median']:.1f} ms x {m.get('cores', '?'):g} cores"
        if "drift_pct" in m:
            note += f" drift {m['drift_pct']:+.1f}% (before/after averaged)"
        if c.get("status") in ("pending", "error"):
            note = f"{VERDICT[c['status']]}: {c.get('reason', '')}"
        out.append(
            f"| {name} | {c.get('description', '')} | {_num(m.get('rps'))} | "
            f"{_num(m.get('p50_ms'), '.2f')} | {_num(m.get('p99_ms'), '.2f')} | "
            f"{_num(m.get('server_cpu_mean_pct'), '.0f')} | "
            f"{_num(m.get('server_rss_mean_mib'), '.0f')} | "
            f"{_num(m.get('machine_cpu_mean_pct'), '.0f')} | {note} |"
        )
    out += [
        "",
        "## Scenarios",
        "",
        "| scenario | req/s | ceiling | ceiling req/s | ratio | target | verdict | p50 ms | p99 ms "
        "| server CPU % | server RSS MiB | machine CPU % |",
        "|---|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in run.get("scenarios", []):
        m = s.get("metrics", {})
        rss = m.get("server_rss_mean_mib", m.get("server_rss_steady_mib"))
        rps = m.get("rps", m.get("achieved_rps"))
        out.append(
            f"| {s['name']} | {_num(rps)} | {s.get('ceiling') or '-'} | "
            f"{_num(m.get('ceiling_rps'))} | {_ratio(m)} | {_target(s)} | "
            f"{VERDICT.get(s['status'], s['status'])} | {_num(m.get('p50_ms'), '.2f')} | "
            f"{_num(m.get('p99_ms'), '.2f')} | {_num(m.get('server_cpu_mean_pct'), '.0f')} | "
            f"{_num(rss, '.0f')} | {_num(m.get('machine_cpu_mean_pct'), '.0f')} |"
        )
    out += _open_loop_section(run)
    out += _export_section(run)
    notes = [
        f"- **{s['name']}** ({s['status']}): {s['reason']}"
        for s in run.get("scenarios", [])
        if s.get("reason")
    ]
    if notes:
        out += ["", "## Reasons", "", *notes]
    out += render_profile(run.get("hotspots") or {})
    if run.get("notes"):
        out += ["", "## Notes", "", *[f"- {n}" for n in run["notes"]]]
    plots = run.get("plots", [])
    if plots:
        out += ["", "## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots]]
    return "\n".join(out) + "\n"


def _open_loop_section(run: dict[str, Any]) -> list[str]:
    rows = [
        s for s in run.get("scenarios", []) if s.get("engine") == "open-loop" and s.get("metrics")
    ]
    if not rows:
        return []
    out = [
        "",
        "## Open-loop runs",
        "",
        "Latency is measured from each request's intended send time (no coordinated omission).",
        "",
        "| scenario | sessions | offered/s | achieved/s | p50 ms | p90 ms | p99 ms | max ms "
        "| errors "
        "| lateness p99 ms | generator lag p99 ms | generator CPU | RSS idle->steady MiB "
        "| KB/session | valid |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for s in rows:
        m = s["metrics"]
        out.append(
            f"| {s['name']} | {_num(m.get('sessions'))} | {_num(m.get('offered_rps'))} | "
            f"{_num(m.get('achieved_rps'))} | {_num(m.get('p50_ms'), '.2f')} | "
            f"{_num(m.get('p90_ms'), '.2f')} | {_num(m.get('p99_ms'), '.2f')} | "
            f"{_num(m.get('max_ms'), '.1f')} | {_num(m.get('errors'))} | "
            f"{_num(m.get('lateness_p99_ms'), '.2f')} | "
            f"{_num(m.get('generator_lag_p99_ms'), '.2f')} | "
            f"{_num(m.get('generator_cpu_max'), '.0%')} | "
            f"{_num(m.get('server_rss_idle_mib'), '.0f')}->"
            f"{_num(m.get('server_rss_steady_mib'), '.0f')} | "
            f"{_num(m.get('rss_per_session_kb'), '.1f')} | {'yes' if m.get('valid') else 'NO'} |"
        )
    for s in rows:
        search = s.get("details", {}).get("search")
        if not search:
            continue
        out += [
            "",
            f"### Session search - {s['name']}",
            "",
            "| sessions | passed | reason |",
            "|---:|---|---|",
        ]
        for step in search["steps"]:
            out.append(
                f"| {step['sessions']:,} | {'yes' if step['passed'] else 'no'} | {step['reason']} |"
            )
        best = s["metrics"].get("max_sessions")
        out += ["", f"Largest passing: **{_num(best)}** sessions ({search['stopped']})."]
    return out


def _export_section(run: dict[str, Any]) -> list[str]:
    rows = [s for s in run.get("scenarios", []) if s.get("engine") == "export" and s.get("metrics")]
    if not rows:
        return []
    out = [
        "",
        "## Exports",
        "",
        "The export read whole over HTTP, in rounds with `COPY (the same query) TO STDOUT` of the",
        "same rows (the scenarios table's req/s and ceiling req/s above are rows/s). First byte:",
        "the worst round (median in brackets); RSS growth: the server's process tree, the worst",
        "round's peak above its idle second before the request.",
        "",
        "| scenario | rows | export rows/s | COPY rows/s | ratio | first byte ms "
        "| COPY first byte ms | RSS growth MiB | seconds (export / COPY) | server CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in rows:
        m = s["metrics"]
        out.append(
            f"| {s['name']} | {_num(m.get('rows'))} | {_num(m.get('rps'))} | "
            f"{_num(m.get('ceiling_rps'))} | {_ratio(m)} | {_num(m.get('ttfb_ms'), '.0f')} "
            f"({_num(m.get('ttfb_median_ms'), '.0f')}) | {_num(m.get('copy_ttfb_ms'), '.0f')} | "
            f"{_num(m.get('rss_growth_mib'), '.1f')} | {_num(m.get('seconds'), '.2f')} / "
            f"{_num(m.get('copy_seconds'), '.2f')} | {_num(m.get('server_cpu_mean_pct'), '.0f')} |"
        )
    return out


def write_outputs(run: dict[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """Write results.json (keeping the previous one as previous.json), plots, report.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if plots:
        for path in (
            throughput_plot(run, out_dir / "throughput.png"),
            open_loop_plot(run, out_dir / "open_loop.png"),
        ):
            if path is not None:
                written.append(path)
        run["plots"] = [p.name for p in written]
    results = out_dir / "results.json"
    if results.exists():
        shutil.copyfile(results, out_dir / "previous.json")
    results.write_text(json.dumps(run, indent=2, sort_keys=False, default=str) + "\n")
    report = out_dir / "report.md"
    report.write_text(render_markdown(run))
    return [results, report, *written]
