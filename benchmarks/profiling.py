"""Where the time goes: py-spy on the server's worker while wrk drives one scenario.

The harness profiles the closed-loop scenario furthest below its target and writes the
raw stacks (`profile-<scenario>.txt`, flamegraph-ready collapsed format) and a summary:
the share of samples whose innermost Python frame lies in each part of the stack (our
code, Litestar, Granian, psycopg, ...), and the functions with the most such samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.wrk import WrkJob, run_wrk

AREAS = (
    ("(server/http/", "request gate, access, limits (server/http)"),
    ("(server/security/", "tokens (server/security)"),
    ("(actors/", "actors"),
    ("(server/", "routes and services"),
    ("(litestar/", "Litestar"),
    ("(msgspec", "msgspec"),
    ("(psycopg", "psycopg, psycopg_pool"),
    ("(granian/", "Granian (Python side)"),
    ("(uvloop", "uvloop"),
)
OTHER = "elsewhere (stdlib, native, idle)"


def area_of(frame: str) -> str:
    return next((label for marker, label in AREAS if marker in frame), OTHER)


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_under_load(
    job: WrkJob, worker_pid: int, out_path: Path, *, seconds: float, wrk_path: str
) -> dict[str, Any]:
    """Record `seconds` of the worker under `job`'s load; return the summary."""
    py_spy = py_spy_path()
    if py_spy is None:
        return {"error": "py-spy not installed"}
    recorder = subprocess.Popen(
        [py_spy, "record", "-p", str(worker_pid), "-d", str(int(seconds)), "-r", "200",
         "-f", "raw", "-o", str(out_path), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    load = run_wrk(replace(job, duration_s=seconds + 2), wrk_path)
    try:
        _, err = recorder.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        recorder.kill()
        return {"error": "py-spy did not finish"}
    if recorder.returncode != 0 or not out_path.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"}
    summary = summarise(out_path)
    summary["rps_while_profiled"] = round(load.rps)
    return summary


def summarise(raw_path: Path, top: int = 15) -> dict[str, Any]:
    own: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        leaf = stack.split(";")[-1]
        own[leaf] += samples
        by_area[area_of(leaf)] += samples
    if not total:
        return {"error": "no samples"}
    return {
        "samples": total,
        "self": [(frame, round(n / total * 100, 1)) for frame, n in own.most_common(top)],
        "areas": [(label, round(n / total * 100, 1)) for label, n in by_area.most_common()],
    }


def render(profile: dict[str, Any]) -> list[str]:
    """The report section."""
    if not profile:
        return []
    out = ["", "## Where the time goes", ""]
    if "error" in profile:
        return [*out, f"Profiling `{profile.get('scenario')}` failed: {profile['error']}"]
    out += [
        f"py-spy on the server worker while wrk drove **{profile['scenario']}** "
        f"({profile['samples']:,} samples at 200 Hz, {profile['rps_while_profiled']:,} req/s; "
        f"raw stacks in `{profile['raw']}`).",
        "",
        "| innermost frame in | % of samples |",
        "|---|---:|",
        *[f"| {label} | {pct} |" for label, pct in profile["areas"]],
        "",
        "| innermost function | % of samples |",
        "|---|---:|",
        *[f"| `{frame or '(idle / native)'}` | {pct} |" for frame, pct in profile["self"]],
    ]
    return out
