"""Progress lines while the harness runs: one line per step, prefixed with the elapsed time."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``[  12.3s] message`` lines, measured from construction."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._t0 = time.monotonic()
        self._stream = stream if stream is not None else sys.stderr

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._t0

    def step(self, message: str) -> None:
        """Print one progress line."""
        print(f"[{self.elapsed:7.1f}s] {message}", file=self._stream, flush=True)
