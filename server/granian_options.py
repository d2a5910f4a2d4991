"""How Granian is run for a given `Settings`: one list of options for `sevenp serve` and tests.

Slow clients: Granian closes an HTTP/1 connection that has not sent a whole request head
within the header-read timeout, and hyper starts that clock whenever a connection waits
for a request, so the same timeout ends idle keep-alive connections. In `auto` and `2`
modes a connection that never sends its first bytes is never closed, so there a silent
socket holds a `BACKPRESSURE` slot forever.

Stopping: a worker gets `DRAIN_SECONDS` in all for its shutdown (server/runtime.py) and
exits on its own at most `WORKER_EXIT_GRACE_SECONDS` later; Granian kills it
`KILL_MARGIN_SECONDS` past the budget, and the launcher (server/launcher.py) kills the
whole Granian process group `LAUNCHER_MARGIN_SECONDS` past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from server.http.request_size import HTTP1_BUFFER_BYTES
from server.settings import Settings

WORKER_EXIT_GRACE_SECONDS = 0.5
KILL_MARGIN_SECONDS = 2
LAUNCHER_MARGIN_SECONDS = 3.0


def workers_kill_timeout(settings: Settings) -> int:
    return math.ceil(settings.drain_seconds) + KILL_MARGIN_SECONDS


def launcher_deadline_seconds(settings: Settings) -> float:
    return settings.drain_seconds + LAUNCHER_MARGIN_SECONDS


@dataclass(frozen=True, slots=True)
class GranianOptions:
    http: str
    backlog: int
    backpressure: int
    header_read_timeout_ms: int
    keep_alive: bool
    workers_kill_timeout: int

    @classmethod
    def of(cls, settings: Settings) -> GranianOptions:
        return cls(
            http=settings.http,
            backlog=settings.backlog,
            backpressure=settings.backpressure,
            header_read_timeout_ms=max(1, round(settings.http_header_read_timeout_seconds * 1000)),
            keep_alive=settings.http_keep_alive,
            workers_kill_timeout=workers_kill_timeout(settings),
        )

    def server_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `granian.server.Server`."""
        from granian.constants import HTTPModes
        from granian.http import HTTP1Settings

        return {
            "http": HTTPModes(self.http),
            "backlog": self.backlog,
            "backpressure": self.backpressure,
            # Headers past this buffer: Granian answers 431 itself (server/http/request_size.py).
            "http1_settings": HTTP1Settings(
                header_read_timeout=self.header_read_timeout_ms,
                keep_alive=self.keep_alive,
                max_buffer_size=HTTP1_BUFFER_BYTES,
            ),
            "workers_kill_timeout": self.workers_kill_timeout,
        }

    def command_line(self) -> list[str]:
        """The same options as flags of `python -m granian`."""
        return [
            "--http", self.http,
            "--backlog", str(self.backlog),
            "--backpressure", str(self.backpressure),
            "--http1-header-read-timeout", str(self.header_read_timeout_ms),
            "--http1-keep-alive" if self.keep_alive else "--no-http1-keep-alive",
            "--http1-buffer-size", str(HTTP1_BUFFER_BYTES),
            "--workers-kill-timeout", str(self.workers_kill_timeout),
        ]  # fmt: skip
