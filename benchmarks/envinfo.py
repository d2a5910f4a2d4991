"""Describes the machine and software a run measured: CPU, kernel, Python, versions, git rev."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("granian", "litestar", "msgspec", "psycopg", "psycopg-pool", "uvloop", "argon2-cffi")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision(root: Path) -> str | None:
    """``HEAD`` commit (with ``-dirty``), or None outside git / before the first commit."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    """Installed versions of the packages whose speed the figures depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def wrk_version(wrk_path: str | None) -> str | None:
    if not wrk_path:
        return None
    try:
        proc = subprocess.run([wrk_path, "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return first[0] if first else None


def environment(root: Path, wrk_path: str | None = None) -> dict[str, Any]:
    """The environment block of results.json."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        affinity = os.cpu_count() or 0
    return {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": affinity,
        "cpu_model": cpu_model(),
        "memory_mib": round(psutil.virtual_memory().total / 2**20),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "wrk": wrk_version(wrk_path),
        "git_revision": git_revision(root),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
