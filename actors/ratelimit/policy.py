"""Rate-limit policies: what is limited, how much, over which window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RatePolicy:
    """`limit` units per `window_seconds`, enforced as a GCRA with burst = `limit`.

    `strict` policies are decided atomically in Redis (exact cluster-wide);
    the others locally, with a budget synced to Redis in batches.
    `skip_successful` policies refund the unit of every successful request.
    """

    name: str
    limit: int
    window_seconds: float
    strict: bool = False
    skip_successful: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.isascii() or not self.name.isprintable():
            raise ValueError(f"policy name must be printable ASCII: {self.name!r}")
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1: {self.limit}")
        if not self.window_seconds * 1e6 >= self.limit:
            raise ValueError(f"window must allow >= 1 us per unit: {self.window_seconds}")

    @property
    def emission_interval(self) -> float:
        """Seconds between units at the sustained rate."""
        return self.window_seconds / self.limit


GENERAL = RatePolicy("general", 1000, 900)
AUTH = RatePolicy("auth", 5, 900, strict=True, skip_successful=True)
API = RatePolicy("api", 100, 60)
