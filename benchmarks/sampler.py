"""Samples CPU% and RSS of a server's whole process tree every 0.5 s in a background thread.

Also samples the whole machine's busy CPU, so a report shows how much of the shared machine other
work took while a figure was measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import psutil

ProcessSource = Callable[[], list[psutil.Process]]


def _mean(values: list[float] | list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class Samples:
    """Series of one sampling window: wall time, summed CPU% of the tree (100 = one core), summed
    RSS, and the machine's busy CPU% (100 = one core)."""

    times: list[float] = field(default_factory=list)
    cpu_percent: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)
    machine_cpu_percent: list[float] = field(default_factory=list)

    def window(self, start: float, end: float) -> Samples:
        """Samples whose wall time lies in ``[start, end]``."""
        out = Samples()
        for i, t in enumerate(self.times):
            if start <= t <= end:
                out.times.append(t)
                out.cpu_percent.append(self.cpu_percent[i])
                out.rss_bytes.append(self.rss_bytes[i])
                out.machine_cpu_percent.append(self.machine_cpu_percent[i])
        return out

    def extend(self, other: Samples) -> None:
        """Append ``other``'s samples (e.g. several rounds of one scenario)."""
        self.times += other.times
        self.cpu_percent += other.cpu_percent
        self.rss_bytes += other.rss_bytes
        self.machine_cpu_percent += other.machine_cpu_percent

    @property
    def cpu_mean(self) -> float:
        return _mean(self.cpu_percent)

    @property
    def cpu_max(self) -> float:
        return max(self.cpu_percent, default=0.0)

    @property
    def rss_mean(self) -> float:
        return _mean(self.rss_bytes)

    @property
    def rss_max(self) -> int:
        return max(self.rss_bytes, default=0)

    def summary(self) -> dict[str, float]:
        """Mean/max CPU (% of one core), RSS (MiB) and the machine's mean busy CPU."""
        return {
            "cpu_mean_pct": round(self.cpu_mean, 1),
            "cpu_max_pct": round(self.cpu_max, 1),
            "rss_mean_mib": round(self.rss_mean / 2**20, 1),
            "rss_max_mib": round(self.rss_max / 2**20, 1),
            "machine_cpu_mean_pct": round(_mean(self.machine_cpu_percent), 1),
        }


class ProcessSampler:
    """Background sampler of every process ``source()`` returns (re-read each tick)."""

    def __init__(self, source: ProcessSource, interval: float = 0.5) -> None:
        self._source = source
        self._interval = interval
        self._known: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cores = psutil.cpu_count() or 1
        self.samples = Samples()

    def _tick(self, record: bool = True) -> None:
        current = {p.pid: p for p in self._source()}
        for pid, proc in current.items():
            if pid not in self._known:
                self._known[pid] = proc
                try:
                    proc.cpu_percent(None)  # the first call primes the delta
                except psutil.Error:
                    continue
        for pid in list(self._known):
            if pid not in current:
                del self._known[pid]
        cpu = 0.0
        rss = 0
        for proc in self._known.values():
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue
        machine = psutil.cpu_percent(None) * self._cores
        if not record:
            return
        self.samples.times.append(time.time())
        self.samples.cpu_percent.append(cpu)
        self.samples.rss_bytes.append(rss)
        self.samples.machine_cpu_percent.append(machine)

    def _run(self) -> None:
        self._tick(record=False)  # primes every CPU counter
        while not self._stop.wait(self._interval):
            self._tick()

    def start(self) -> ProcessSampler:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Samples:
        """Stop sampling and return the collected series."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.samples

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
