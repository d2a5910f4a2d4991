"""GCRA per key in process: a bounded store of theoretical arrival times.

A policy of `limit` units per `window_seconds` has emission interval I = window / limit (whole
nanoseconds, rounded down so that a full burst always fits) and burst B = limit * I. Per key the
store keeps a theoretical arrival time TAT; a request of `cost` units at `now` is admitted iff
max(TAT, now) + cost * I - now <= B, and TAT then becomes that value.

Guarantee: the units admitted for one key at times within any closed interval [a, b] total at
most limit + floor((b - a) / I): a full burst at once, then one unit per I. Proof: an admission
at t sets TAT to max(TAT, t) plus I per unit, and nothing lowers it but a refund (merges only
raise it), so after the n units admitted in [a, b], the last at t <= b, TAT >= a + n * I; that
admission needed TAT - t <= B = limit * I, hence n <= limit + (b - a) / I. Refunds give units
back, so the bound is on the units kept; it holds while the key is not evicted at the cap
(below), and dropping a full bucket changes nothing, since an absent key decides as TAT = now.

Memory is bounded. A key whose TAT <= now is a full bucket, the same as an absent key, so
`sweep()` drops it once it has been full for `keep_full_seconds` (a client back soon updates its
entry rather than inserting it again); its owner calls it periodically. The number of keys is
capped: at the cap the least recently used keys of the largest policy table go, 1/1024 of it at
a time. A table is a plain dict kept in order of last use by popping a key and inserting it
again on every use, so its oldest keys are at its front.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Mapping
from itertools import islice
from typing import NamedTuple

from actors.ratelimit.policy import GENERAL, RatePolicy

NS_PER_SECOND = 1_000_000_000


class Decision(NamedTuple):
    """Outcome of one rate-limit check.

    `remaining`: units that could be admitted right now; `reset_after`: seconds until the bucket
    is full again; `retry_after`: seconds until this request would be admitted (0 when allowed).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float


def interval_ticks(policy: RatePolicy, ticks_per_second: int) -> int:
    """The emission interval in whole ticks, rounded down so that a full burst always fits."""
    return round(policy.window_seconds * ticks_per_second) // policy.limit


def decision_from_backlog(
    limit: int, interval: int, backlog: int, allowed: bool, cost: int, ticks_per_second: int
) -> Decision:
    """The Decision for a backlog TAT - now >= 0, in ticks (after the request if allowed)."""
    burst = limit * interval
    if allowed:
        return Decision(True, limit, (burst - backlog) // interval, backlog / ticks_per_second, 0.0)
    remaining = max(0, (burst - backlog) // interval)
    retry_after = (backlog + cost * interval - burst) / ticks_per_second
    return Decision(False, limit, remaining, backlog / ticks_per_second, retry_after)


class _Table:
    """One policy's TATs, in nanoseconds of the store's clock, least recently used first."""

    __slots__ = ("burst", "interval", "policy", "tats")

    def __init__(self, policy: RatePolicy, tats: dict[str, int]) -> None:
        self.policy = policy
        self.interval = interval_ticks(policy, NS_PER_SECOND)
        self.burst = policy.limit * self.interval
        self.tats = tats


class GcraStore:
    """Per-(policy, key) TATs, bounded and expiring."""

    def __init__(
        self,
        *,
        max_keys: int = 1_000_000,
        clock: Callable[[], float],
        keep_full_seconds: float = 0.0,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1: {max_keys}")
        self._now: Callable[[], int] = (
            time.monotonic_ns if clock is time.monotonic else lambda: round(clock() * NS_PER_SECOND)
        )
        self._keep_full = round(keep_full_seconds * NS_PER_SECOND)
        self._max_keys = max_keys
        self._tables: dict[str, _Table] = {}
        self._size = 0
        self.inserted_since_sweep = 0
        self.refused = 0

    def __len__(self) -> int:
        return self._size

    def check(self, policy: RatePolicy, key: str, cost: int = 1) -> Decision:
        """Decide a request of `cost` units; consume them when allowed."""
        if not 1 <= cost <= policy.limit:
            raise ValueError(f"cost must be within 1..{policy.limit}: {cost}")
        table = self._table(policy)
        tats, interval, limit = table.tats, table.interval, policy.limit
        now = self._now()
        tat = tats.pop(key, None)
        backlog = 0 if tat is None else max(0, tat - now)
        after = backlog + cost * interval
        if after > table.burst:
            self.refused += 1
            if tat is not None:
                tats[key] = tat
            return decision_from_backlog(
                policy.limit, interval, backlog, False, cost, NS_PER_SECOND
            )
        if tat is None:
            self._insert(tats, key, now + after)
        else:
            tats[key] = now + after
        return decision_from_backlog(limit, interval, after, True, cost, NS_PER_SECOND)

    def peek(self, policy: RatePolicy, key: str) -> Decision:
        """The decision a one-unit request would get now, without consuming anything."""
        table = self._table(policy)
        tat = table.tats.get(key)
        backlog = 0 if tat is None else max(0, tat - self._now())
        allowed = backlog + table.interval <= table.burst
        return decision_from_backlog(
            policy.limit, table.interval, backlog, allowed, 1, NS_PER_SECOND
        )

    def refund(self, policy: RatePolicy, key: str, cost: int = 1) -> None:
        """Give back `cost` units (skip-successful requests); never beyond a full bucket."""
        if cost < 1:
            raise ValueError(f"cost must be >= 1: {cost}")
        table = self._table(policy)
        tat = table.tats.get(key)
        if tat is None:
            return
        tat -= cost * table.interval
        if tat <= self._now():
            del table.tats[key]
            self._size -= 1
        else:
            table.tats[key] = tat

    def merge_remote(self, policy: RatePolicy, backlogs: Mapping[str, float]) -> None:
        """Raise each key's backlog to at least the given units: the cluster view from a sync."""
        table = self._table(policy)
        tats, interval = table.tats, table.interval
        now = self._now()
        for key, backlog in backlogs.items():
            if backlog <= 0:
                continue
            target = now + round(backlog * interval)
            tat = tats.get(key)
            if tat is None:
                self._insert(tats, key, target)
            elif target > tat:
                del tats[key]
                tats[key] = target

    def sweep(self, max_items: int) -> int:
        """Drop up to `max_items` keys full for `keep_full_seconds`, least recently used first
        (each table's walk stops at its first key to keep); returns how many were dropped."""
        full_since = self._now() - self._keep_full
        self.inserted_since_sweep = 0
        dropped = 0
        for table in self._tables.values():
            expired = []
            for key, tat in islice(table.tats.items(), max_items - dropped):
                if tat > full_since:
                    break
                expired.append(key)
            for key in expired:
                del table.tats[key]
            dropped += len(expired)
        self._size -= dropped
        return dropped

    def _table(self, policy: RatePolicy) -> _Table:
        """The table of `policy`; a new policy of the same name (an instance's share that
        changed) keeps the keys' TATs."""
        table = self._tables.get(policy.name)
        if table is None or table.policy is not policy:
            tats: dict[str, int] = {} if table is None else table.tats
            table = self._tables[policy.name] = _Table(policy, tats)
        return table

    def _insert(self, tats: dict[str, int], key: str, tat: int) -> None:
        if self._size >= self._max_keys:
            victim = max((table.tats for table in self._tables.values()), key=len)
            oldest = list(islice(victim, max(1, len(victim) >> 10)))
            for old in oldest:
                del victim[old]
            self._size -= len(oldest)
        tats[key] = tat
        self._size += 1
        self.inserted_since_sweep += 1


def _ipv4(i: int) -> str:
    return f"{i >> 24 & 255}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def measure_store_memory(
    n_keys: int, *, max_keys: int | None = None, policy: RatePolicy = GENERAL
) -> int:
    """Bytes (tracemalloc) held by a store after `n_keys` distinct IPv4 keys hit it once.

    The clock is frozen so nothing expires: beyond `max_keys` (default `n_keys`) every insert
    evicts. Raises RuntimeError if the store ever holds more than its cap.
    """
    cap = n_keys if max_keys is None else max_keys
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = GcraStore(max_keys=cap, clock=lambda: 0.0)
        for i in range(n_keys):
            store.check(policy, _ipv4(i))
        if len(store) > cap:
            raise RuntimeError(f"store holds {len(store)} keys, cap is {cap}")
        used = tracemalloc.get_traced_memory()[0] - before
        del store
    finally:
        if started:
            tracemalloc.stop()
    return used
