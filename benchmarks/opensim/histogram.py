"""Latency histogram with fixed logarithmic buckets, so merging across processes is exact.

Values are microseconds. Bucket ``i`` holds values in ``[2**(i/16), 2**((i+1)/16))`` (a ~4.4 %
relative width); bucket 0 also holds everything below 1 µs, the last bucket everything above
~10 minutes. Percentiles report a bucket's upper edge, capped by the exact maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SUB_BUCKETS = 16
BUCKETS = 30 * SUB_BUCKETS  # 2**30 µs ≈ 17.9 minutes


def bucket_of(value_us: float) -> int:
    """Index of the bucket holding ``value_us``."""
    if value_us < 1.0:
        return 0
    return min(int(math.log2(value_us) * SUB_BUCKETS), BUCKETS - 1)


def bucket_upper_us(index: int) -> float:
    """Upper edge of bucket ``index`` in microseconds."""
    return float(2.0 ** ((index + 1) / SUB_BUCKETS))


@dataclass
class Histogram:
    """Counts per bucket plus exact count, sum, min and max."""

    counts: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    count: int = 0
    total_us: float = 0.0
    min_us: float = math.inf
    max_us: float = 0.0

    def record(self, value_us: float) -> None:
        """Add one observation."""
        self.counts[bucket_of(value_us)] += 1
        self.count += 1
        self.total_us += value_us
        if value_us < self.min_us:
            self.min_us = value_us
        if value_us > self.max_us:
            self.max_us = value_us

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s observations to this histogram (exact: same bucket edges)."""
        for i, n in enumerate(other.counts):
            if n:
                self.counts[i] += n
        self.count += other.count
        self.total_us += other.total_us
        self.min_us = min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)

    def percentile_us(self, q: float) -> float:
        """The ``q``-th percentile (0-100): upper edge of the bucket reaching it, at most max."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min(bucket_upper_us(i), self.max_us)
        return self.max_us

    @property
    def mean_us(self) -> float:
        return self.total_us / self.count if self.count else 0.0

    def summary_ms(self) -> dict[str, float]:
        """p50/p90/p99/max/mean in milliseconds."""
        return {
            "p50_ms": round(self.percentile_us(50) / 1000, 3),
            "p90_ms": round(self.percentile_us(90) / 1000, 3),
            "p99_ms": round(self.percentile_us(99) / 1000, 3),
            "max_ms": round(self.max_us / 1000, 3),
            "mean_ms": round(self.mean_us / 1000, 3),
        }

    def to_dict(self) -> dict[str, object]:
        """Compact, JSON- and pickle-friendly form (sparse counts)."""
        return {
            "counts": {str(i): n for i, n in enumerate(self.counts) if n},
            "count": self.count,
            "total_us": self.total_us,
            "min_us": self.min_us if self.count else 0.0,
            "max_us": self.max_us,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        """Inverse of ``to_dict``."""
        hist = cls()
        for key, n in data.get("counts", {}).items():
            hist.counts[int(key)] = int(n)
        hist.count = int(data.get("count", 0))
        hist.total_us = float(data.get("total_us", 0.0))
        hist.min_us = float(data.get("min_us", 0.0)) if hist.count else math.inf
        hist.max_us = float(data.get("max_us", 0.0))
        return hist
