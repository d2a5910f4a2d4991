"""Closed-loop maximum throughput with wrk: builds the command, runs it, parses its JSON summary."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
MARKER = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk failed or printed no summary."""


@dataclass(frozen=True)
class WrkErrors:
    """wrk's error counters; ``status`` counts responses with a status >= 400."""

    connect: int = 0
    read: int = 0
    write: int = 0
    status: int = 0
    timeout: int = 0

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.status + self.timeout


@dataclass(frozen=True)
class WrkResult:
    """Summary of one wrk run; latencies in milliseconds."""

    requests: int
    duration_s: float
    bytes: int
    errors: WrkErrors
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_max_ms: float
    latency_mean_ms: float

    @property
    def rps(self) -> float:
        """Completed requests per second (including error responses)."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["rps"] = round(self.rps, 1)
        return out


def parse_wrk_output(text: str) -> WrkResult:
    """Parse the ``WRK_JSON {...}`` line printed by ``lua/common.lua``'s ``done``."""
    for line in reversed(text.splitlines()):
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise WrkError(f"no {MARKER.strip()} line in wrk output: {text[-500:]!r}")
    lat = data["latency_us"]
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=int(data["duration_us"]) / 1e6,
        bytes=int(data["bytes"]),
        errors=WrkErrors(**{k: int(v) for k, v in data["errors"].items()}),
        latency_p50_ms=lat["p50"] / 1000.0,
        latency_p90_ms=lat["p90"] / 1000.0,
        latency_p99_ms=lat["p99"] / 1000.0,
        latency_p999_ms=lat["p999"] / 1000.0,
        latency_max_ms=lat["max"] / 1000.0,
        latency_mean_ms=lat["mean"] / 1000.0,
    )


@dataclass(frozen=True)
class WrkJob:
    """One wrk invocation. ``tokens_file``: one bearer token per line (rotated round-robin);
    ``body_file``: one fixed JSON body; ``bodies_file``: one JSON body per line (rotated);
    ``rows_file``: one ``<path>\t<token>`` request per line, each sent once across the runs
    that share ``offset_file`` (where the next run starts; see ``lua/rows.lua``), each with
    ``body_file`` as its body when one is given."""

    url: str
    method: str = "GET"
    connections: int = 100
    threads: int = 1
    duration_s: float = 5.0
    timeout_s: float = 5.0
    tokens_file: Path | None = None
    body_file: Path | None = None
    bodies_file: Path | None = None
    rows_file: Path | None = None
    offset_file: Path | None = None


def wrk_command(job: WrkJob, wrk_path: str = "wrk") -> list[str]:
    """The wrk command line for ``job`` (script and arguments chosen from its inputs)."""
    tokens = str(job.tokens_file) if job.tokens_file else "-"
    if job.rows_file is not None:
        if job.offset_file is None:
            raise ValueError("a rows file needs an offset file")
        script = LUA_DIR / "rows.lua"
        args = [str(job.rows_file), str(job.offset_file), job.method, str(job.threads)]
        if job.body_file is not None:
            args.append(str(job.body_file))
    elif job.bodies_file is not None:
        script, args = LUA_DIR / "bodies.lua", [str(job.bodies_file), job.method]
    elif job.body_file is not None:
        script, args = LUA_DIR / "bearer_body.lua", [tokens, str(job.body_file), job.method]
    else:
        script, args = LUA_DIR / "bearer.lua", [tokens, job.method]
    connections = max(job.connections, job.threads)
    return [
        wrk_path,
        f"-t{job.threads}",
        f"-c{connections}",
        f"-d{max(1, round(job.duration_s))}s",
        f"--timeout={max(1, round(job.timeout_s))}s",
        "-s",
        str(script),
        job.url,
        "--",
        *args,
    ]


def run_wrk(job: WrkJob, wrk_path: str = "wrk") -> WrkResult:
    """Run wrk to completion and return its parsed summary."""
    cmd = wrk_command(job, wrk_path)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=job.duration_s + 60, check=False
    )
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return parse_wrk_output(proc.stdout)
