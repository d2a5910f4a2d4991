"""Per-process counters of an open-loop run, mergeable across processes exactly."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.opensim.histogram import Histogram

ERROR_KINDS = ("connect", "read", "timeout", "status_5xx", "status_4xx")


_HISTOGRAMS = ("latency", "service", "lateness", "lag")
_COUNTS = ("intended", "sent_in_window", "completed", "unsent", "requests_total", "connects")


@dataclass
class RunStats:
    """What one generator process observed.

    ``latency``: intended send -> response (the figure that matters; includes lateness).
    ``service``: actual send -> response. ``lateness``: intended -> actual send.
    ``lag``: actual send -> max(intended, previous response or reconnect): delay caused by the
    generator alone.
    Histograms cover requests intended inside the steady window; ``errors`` cover the whole run.
    """

    latency: Histogram = field(default_factory=Histogram)
    service: Histogram = field(default_factory=Histogram)
    lateness: Histogram = field(default_factory=Histogram)
    lag: Histogram = field(default_factory=Histogram)
    intended: int = 0
    sent_in_window: int = 0
    completed: int = 0
    unsent: int = 0
    requests_total: int = 0
    connects: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    per_entry: dict[str, Counter[str]] = field(default_factory=dict)
    first_error: str | None = None

    def error(self, kind: str, entry: str | None = None, detail: str | None = None) -> None:
        """Count one error of ``kind`` (one of ``ERROR_KINDS``)."""
        self.errors[kind] += 1
        if entry is not None:
            self.per_entry.setdefault(entry, Counter())[kind] += 1
        if self.first_error is None and detail:
            self.first_error = f"{kind}: {detail}"

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: RunStats) -> None:
        """Add ``other`` into this one."""
        for name in _HISTOGRAMS:
            getattr(self, name).merge(getattr(other, name))
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)
        self.statuses.update(other.statuses)
        for label, counts in other.per_entry.items():
            self.per_entry.setdefault(label, Counter()).update(counts)
        if self.first_error is None:
            self.first_error = other.first_error

    def to_dict(self) -> dict[str, object]:
        """Picklable/JSON form."""
        return {
            **{name: getattr(self, name).to_dict() for name in _HISTOGRAMS},
            **{name: getattr(self, name) for name in _COUNTS},
            "errors": dict(self.errors),
            "statuses": dict(self.statuses),
            "per_entry": {k: dict(v) for k, v in self.per_entry.items()},
            "first_error": self.first_error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStats:
        """Inverse of ``to_dict``."""
        out = cls()
        for name in _HISTOGRAMS:
            setattr(out, name, Histogram.from_dict(data[name]))
        for name in _COUNTS:
            setattr(out, name, int(data[name]))
        out.errors = Counter(data["errors"])
        out.statuses = Counter(data["statuses"])
        out.per_entry = {k: Counter(v) for k, v in data["per_entry"].items()}
        out.first_error = data.get("first_error")
        return out
