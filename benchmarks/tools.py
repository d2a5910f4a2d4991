"""Process-level helpers of the harness: wrk installation, free ports, descriptor limits."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess


class ToolMissingError(RuntimeError):
    """A required external tool is not installed and cannot be installed here."""


def ensure_wrk() -> str:
    """Return the path of ``wrk``, installing it with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise ToolMissingError(
            "wrk is not installed and this process is not root; install it with "
            "`sudo apt-get install -y wrk` (or build it from https://github.com/wg/wrk)"
        )
    if shutil.which("apt-get") is None:
        raise ToolMissingError(
            "wrk is not installed and apt-get is unavailable; install wrk by hand"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", *args], env=env, capture_output=True, text=True, check=False
        )

    install = apt_get("install", "-y", "--no-install-recommends", "wrk")
    if install.returncode != 0:
        # The package lists may be missing on a fresh machine: refresh them once and retry.
        apt_get("update")
        install = apt_get("install", "-y", "--no-install-recommends", "wrk")
    found = shutil.which("wrk")
    if install.returncode != 0 or not found:
        tail = (install.stderr or install.stdout or "").strip()[-500:]
        raise ToolMissingError(f"apt-get install wrk failed (exit {install.returncode}): {tail}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def raise_nofile_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def nofile_limit() -> int:
    """Return this process's soft open-file limit."""
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
