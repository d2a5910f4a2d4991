"""Per-figure deltas between two results.json files (``--compare OLD.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIGURES = (
    "rps",
    "ratio",
    "p50_ms",
    "p99_ms",
    "errors",
    "max_sessions",
    "achieved_rps",
    "rss_per_session_kb",
    "server_cpu_mean_pct",
    "server_rss_mean_mib",
    "server_rss_steady_mib",
    "verify_ms_median",
)


@dataclass(frozen=True)
class Delta:
    """One figure in the old and the new run."""

    figure: str
    old: float
    new: float
    old_status: str = ""
    new_status: str = ""

    @property
    def change_pct(self) -> float | None:
        if self.old == 0:
            return None
        return (self.new - self.old) / abs(self.old) * 100.0


def _rows(data: dict[str, Any]) -> dict[str, tuple[dict[str, float], str]]:
    rows: dict[str, tuple[dict[str, float], str]] = {}
    for name, c in data.get("ceilings", {}).items():
        rows[f"ceiling {name}"] = (c.get("metrics", {}), c.get("status", ""))
    for s in data.get("scenarios", []):
        rows[s["name"]] = (s.get("metrics", {}), s.get("status", ""))
    return rows


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Delta]:
    """Deltas of every figure present in both runs, in the new run's order."""
    old_rows, new_rows = _rows(old), _rows(new)
    deltas: list[Delta] = []
    for name, (metrics, status) in new_rows.items():
        if name not in old_rows:
            continue
        old_metrics, old_status = old_rows[name]
        for figure in FIGURES:
            if figure in metrics and figure in old_metrics:
                deltas.append(
                    Delta(
                        f"{name}.{figure}",
                        float(old_metrics[figure]),
                        float(metrics[figure]),
                        old_status,
                        status,
                    )
                )
    return deltas


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_deltas(deltas: list[Delta]) -> str:
    """A Markdown table of the deltas (verdict changes flagged)."""
    lines = ["| figure | old | new | change | verdict |", "|---|---:|---:|---:|---|"]
    for d in deltas:
        change = "n/a" if d.change_pct is None else f"{d.change_pct:+.1f}%"
        verdict = (
            d.new_status if d.old_status == d.new_status else f"{d.old_status} -> {d.new_status}"
        )
        lines.append(f"| {d.figure} | {_fmt(d.old)} | {_fmt(d.new)} | {change} | {verdict} |")
    return "\n".join(lines) + "\n"


def compare_files(old_path: Path, new: dict[str, Any]) -> str:
    """Load ``old_path`` and format its deltas against ``new``."""
    old = json.loads(old_path.read_text())
    return format_deltas(compare(old, new))
