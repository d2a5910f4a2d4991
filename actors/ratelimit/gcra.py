"""Pure GCRA: decide requests against per-key theoretical arrival times kept in a bounded store.

A policy of `limit` units per `window_seconds` has emission interval I = window/limit (whole
nanoseconds, rounded down) and burst B = limit * I. Per key the store keeps the theoretical
arrival time TAT; a request of `cost` units at `now` is allowed iff
max(TAT, now) + cost * I - now <= B, and then TAT advances to that value. Guarantee: the units
admitted for one key at times within any closed interval of length L total at most
limit + floor(L / I) -- a full burst of `limit` at once, then one unit per I.

A store built with `log_for` also logs, per policy, every unit it admits or refunds in the
`UnitLog` that callback hands it: what the cluster sync sends to Redis. An admitted unit is
logged as quiet when its key's bucket was full before it (the key was idle here), as busy
otherwise; the sync may hold quiet units longer. A key gets at most one quiet unit per
emission interval (the unit itself leaves a backlog of one interval), refunds and evictions
aside.

A key whose TAT <= now is a full bucket, indistinguishable from an absent key, so it is dropped
by `sweep()` once it has been full for `keep_full_seconds` (a client coming back soon then
updates its entry in place rather than being inserted again). `sweep()` walks each policy's
keys from the least-recently-used end and stops at the first one it must keep; its owner calls
it periodically with a budget that keeps pace with `inserted_since_sweep` (the rate-limit
actor: twice that, plus a floor). Inserts themselves never sweep, so the hot path stays a few
dict operations. The number of keys is capped; at the cap the least-recently-used keys of the
largest policy table are evicted, 1/1024 of it at a time.

A table is a plain dict kept in least-recently-used order by popping a key and inserting it
again on every use: 30 % less memory than an OrderedDict and fewer cache lines per decision (the
hot path touches only the key's slot, its entry and the dict's tail). A plain dict does not
skip the slots its deletions leave at its front, so the oldest keys are only ever reached by
one pass that takes a batch of them (sweep, eviction), never one `next(iter(...))` per key.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice

from actors.ratelimit.policy import GENERAL, RatePolicy

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one rate-limit check.

    `remaining`: units that could be admitted right now; `reset_after`: seconds until the bucket
    is full again; `retry_after`: seconds until this request would be admitted (0 when allowed).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float


def backlog_decision(policy: RatePolicy, admitted: int, cost: int = 1) -> Decision:
    """The Decision an `admit` answer (for a request of `cost` units) stands for."""
    interval = interval_ticks(policy, NS_PER_SECOND)
    if admitted >= 0:
        return decision_from_backlog(policy.limit, interval, admitted, True, cost, NS_PER_SECOND)
    backlog = policy.limit * interval - cost * interval - admitted - 1
    return decision_from_backlog(policy.limit, interval, backlog, False, cost, NS_PER_SECOND)


def interval_ticks(policy: RatePolicy, ticks_per_second: int) -> int:
    """The emission interval in whole ticks, rounded down so that a full burst always fits."""
    return round(policy.window_seconds * ticks_per_second) // policy.limit


def decision_from_backlog(
    limit: int, interval: int, backlog: int, allowed: bool, cost: int, ticks_per_second: int
) -> Decision:
    """Build a Decision from the backlog TAT - now, in ticks (after the request if allowed)."""
    burst = limit * interval
    backlog = max(0, backlog)
    remaining = min(limit, max(0, (burst - backlog) // interval))
    reset_after = backlog / ticks_per_second
    if allowed:
        return Decision(True, limit, remaining, reset_after, 0.0)
    retry_after = (backlog + cost * interval - burst) / ticks_per_second
    return Decision(False, limit, remaining, reset_after, retry_after)


class UnitLog:
    """The keys of units admitted (busy or quiet) and refunded since the log was last taken:
    one list append per unit on the hot path, tallied per key (in C, by Counter) only when
    taken."""

    __slots__ = ("admitted", "quiet", "refunded")

    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.quiet: list[str] = []
        self.refunded: list[str] = []

    def __len__(self) -> int:
        return len(self.admitted) + len(self.quiet) + len(self.refunded)

    def tally(self) -> Counter[str]:
        """Net units per key logged so far, busy and quiet (zero or negative where refunds
        outweigh)."""
        net = Counter(self.admitted)
        net.update(self.quiet)
        net.subtract(self.refunded)
        return net

    def clear(self) -> None:
        self.admitted.clear()
        self.quiet.clear()
        self.refunded.clear()


Decide = Callable[[str, int], int]
"""A policy's decision function: `GcraStore.admit` for one policy, bound to its table."""


class _Table:
    __slots__ = ("burst", "decide", "interval", "log", "policy", "quiet", "refunds", "tats")

    def __init__(
        self, store: GcraStore, policy: RatePolicy, tats: dict[str, int], log: UnitLog | None
    ) -> None:
        self.policy = policy
        self.interval = interval_ticks(policy, NS_PER_SECOND)
        self.burst = policy.limit * self.interval
        self.tats = tats
        self.log = None if log is None else log.admitted
        self.quiet = None if log is None else log.quiet
        self.refunds = None if log is None else log.refunded
        self.decide = _decider(store, self)


def _decider(store: GcraStore, table: _Table) -> Decide:
    """The GCRA step of one table, with everything it reads bound once (the hot path)."""
    clock, epoch, insert = store.clock_ns, store.epoch, store.insert
    tats, interval, burst = table.tats, table.interval, table.burst
    busy_log, quiet_log = table.log, table.quiet
    pop = tats.pop

    def decide(key: str, cost: int = 1) -> int:
        now = clock() - epoch
        tat = pop(key, None)
        if tat is not None and tat > now:
            after = tat - now + cost * interval
            log = busy_log
        else:
            after = cost * interval
            log = quiet_log
        if after > burst:
            store.refused += 1
            if tat is not None:
                tats[key] = tat
            return burst - after - 1
        if tat is None:
            insert(tats, key, now + after)
        else:
            tats[key] = now + after
        if log is not None:
            if cost == 1:
                log.append(key)
            else:
                log.extend([key] * cost)
        return after

    return decide


def _nanoseconds(clock: Callable[[], float]) -> Callable[[], int]:
    if clock is time.monotonic:
        return time.monotonic_ns
    return lambda: round(clock() * NS_PER_SECOND)


class GcraStore:
    """Per-(policy, key) TATs in nanoseconds since the store's creation, bounded and expiring."""

    __slots__ = (
        "_keep_full",
        "_log_for",
        "_max_keys",
        "_size",
        "_tables",
        "clock_ns",
        "epoch",
        "inserted_since_sweep",
        "refused",
    )

    def __init__(
        self,
        *,
        max_keys: int = 1_000_000,
        clock: Callable[[], float],
        log_for: Callable[[RatePolicy], UnitLog] | None = None,
        keep_full_seconds: float = 0.0,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1: {max_keys}")
        self._keep_full = round(keep_full_seconds * NS_PER_SECOND)
        self.clock_ns = _nanoseconds(clock)
        self.epoch = self.clock_ns()
        self._max_keys = max_keys
        self._log_for = log_for
        self._tables: dict[str, _Table] = {}
        self._size = 0
        self.inserted_since_sweep = 0
        self.refused = 0

    def __len__(self) -> int:
        return self._size

    def admit(self, policy: RatePolicy, key: str, cost: int = 1) -> int:
        """The hot path of `check`: the backlog (TAT - now) in nanoseconds after admitting
        `cost` units, or, when refused, minus one minus the nanoseconds until they would fit.

        `backlog_decision` turns either answer into a full Decision when one is needed.
        """
        table = self._tables.get(policy.name)
        if table is None or table.policy is not policy:
            table = self._table(policy)
        return table.decide(key, cost)

    def decider(self, policy: RatePolicy) -> Decide:
        """`admit` bound to one policy: `decider(policy)(key)` is `admit(policy, key)`, without
        the table lookup. Valid while `policy` is the one this store decides under its name."""
        return self._table(policy).decide

    def check(self, policy: RatePolicy, key: str, cost: int = 1) -> Decision:
        """Decide a request of `cost` units; consume them when allowed."""
        if not 1 <= cost <= policy.limit:
            raise ValueError(f"cost must be within 1..{policy.limit}: {cost}")
        return backlog_decision(policy, self.admit(policy, key, cost), cost)

    def peek(self, policy: RatePolicy, key: str) -> Decision:
        """The decision a one-unit request would get now, without consuming anything."""
        table = self._table(policy)
        now = self._now()
        tat = table.tats.get(key)
        backlog = 0 if tat is None or tat < now else tat - now
        allowed = backlog + table.interval <= table.burst
        return decision_from_backlog(
            policy.limit, table.interval, backlog, allowed, 1, NS_PER_SECOND
        )

    def refund(self, policy: RatePolicy, key: str, cost: int = 1) -> None:
        """Give back `cost` units (skip-successful requests); never beyond a full bucket."""
        if cost < 1:
            raise ValueError(f"cost must be >= 1: {cost}")
        table = self._table(policy)
        if table.refunds is not None:
            table.refunds.extend([key] * cost)
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
                self.insert(tats, key, target)
            elif target > tat:
                del tats[key]
                tats[key] = target

    def sweep(self, max_items: int) -> int:
        """Drop up to `max_items` expired keys, oldest use first; returns how many were dropped."""
        now = self._now() - self._keep_full
        self.inserted_since_sweep = 0
        dropped = 0
        for table in self._tables.values():
            dropped += self._sweep_tats(table.tats, now, max_items - dropped)
        return dropped

    def _now(self) -> int:
        return self.clock_ns() - self.epoch

    def _table(self, policy: RatePolicy) -> _Table:
        table = self._tables.get(policy.name)
        if table is None or table.policy is not policy:
            tats: dict[str, int] = {} if table is None else table.tats
            log = None if self._log_for is None else self._log_for(policy)
            table = self._tables[policy.name] = _Table(self, policy, tats, log)
        return table

    def insert(self, tats: dict[str, int], key: str, tat: int) -> None:
        """Add a key; at the cap, first evict the least-recently-used keys of the largest table
        (1/1024 of it, at least one)."""
        if self._size >= self._max_keys:
            victim = max((table.tats for table in self._tables.values()), key=len)
            oldest = list(islice(victim, max(1, len(victim) >> 10)))
            for old in oldest:
                del victim[old]
            self._size -= len(oldest)
        tats[key] = tat
        self._size += 1
        self.inserted_since_sweep += 1

    def _sweep_tats(self, tats: dict[str, int], now: int, budget: int) -> int:
        expired = []
        for key, tat in islice(tats.items(), budget):
            if tat > now:
                break
            expired.append(key)
        for key in expired:
            del tats[key]
        self._size -= len(expired)
        return len(expired)


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
