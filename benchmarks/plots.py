"""PNG plots of a run (matplotlib Agg): throughput against ceilings; latency and memory against
held sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def throughput_plot(run: dict[str, Any], path: Path) -> Path | None:
    """Bars: each closed-loop scenario's req/s next to its ceiling's, labelled with the ratio."""
    rows = [
        s
        for s in run.get("scenarios", [])
        if s.get("engine") == "wrk" and "rps" in s.get("metrics", {})
    ]
    ceilings = {
        f"ceiling {k}": v["metrics"]["rps"]
        for k, v in run.get("ceilings", {}).items()
        if "rps" in v.get("metrics", {})
    }
    if not rows and not ceilings:
        return None
    names = [s["name"] for s in rows] + list(ceilings)
    measured = [s["metrics"]["rps"] for s in rows]
    ceiling_vals = [s["metrics"].get("ceiling_rps", 0.0) for s in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4.5))
    x = range(len(names))
    width = 0.4
    ax.bar([i - width / 2 for i in range(len(rows))], measured, width, label="scenario req/s")
    ax.bar(
        [i + width / 2 for i in range(len(rows))],
        ceiling_vals,
        width,
        label="its ceiling, measured alongside",
        alpha=0.6,
    )
    ax.bar(
        [len(rows) + i for i in range(len(ceilings))],
        list(ceilings.values()),
        width,
        color="grey",
        label="ceiling alone",
    )
    for i, s in enumerate(rows):
        ratio = s["metrics"].get("ratio")
        if ratio is not None:
            ax.annotate(
                f"{ratio:.2f}",
                (i - width / 2, measured[i]),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log)")
    ax.set_title("Throughput against ceilings (label: ratio)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def open_loop_plot(run: dict[str, Any], path: Path) -> Path | None:
    """Latency p50/p99 and server RSS against held sessions, one series per scenario."""
    points = run.get("settings", {}).get("open_loop_points", [])
    if not points:
        return None
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in sorted({p["scenario"] for p in points}):
        series = sorted((p for p in points if p["scenario"] == name), key=lambda p: p["sessions"])
        xs = [p["sessions"] for p in series]
        lat.plot(xs, [p["p50_ms"] for p in series], marker="o", label=f"{name} p50")
        lat.plot(xs, [p["p99_ms"] for p in series], marker="^", linestyle="--", label=f"{name} p99")
        mem.plot(xs, [p["rss_steady_mib"] for p in series], marker="o", label=name)
    lat.axhline(250, color="red", linewidth=0.8, linestyle=":", label="p99 target")
    lat.set_xlabel("held sessions")
    lat.set_ylabel("latency from intended send (ms)")
    lat.set_yscale("log")
    lat.legend(fontsize=7)
    mem.set_xlabel("held sessions")
    mem.set_ylabel("server RSS (MiB)")
    mem.legend(fontsize=7)
    fig.suptitle("Open loop: latency and memory against concurrent sessions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
