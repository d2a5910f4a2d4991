"""Quiet units: which admissions the store logs as quiet, and how long the sync holds them."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.ratelimit.gcra import GcraStore, UnitLog
from actors.ratelimit.policy import API, GENERAL, RatePolicy
from actors.ratelimit.redis_sync import PendingUnits, quiet_hold

FOUR = RatePolicy("four", 4, 8)  # one unit per 2 s


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def logged_store() -> tuple[GcraStore, UnitLog, Clock]:
    clock = Clock()
    log = UnitLog()
    return GcraStore(clock=clock, log_for=lambda _: log), log, clock


def test_a_unit_on_a_full_bucket_is_quiet_and_one_on_a_backlog_busy() -> None:
    store, log, clock = logged_store()
    store.check(FOUR, "a")
    store.check(FOUR, "a")
    clock.now = 3.9  # the backlog of 4 s is not drained yet
    store.check(FOUR, "a")
    clock.now = 10.0  # drained: the bucket is full again
    store.check(FOUR, "a", cost=2)
    assert log.quiet == ["a", "a", "a"]
    assert log.admitted == ["a", "a"]


def test_refused_units_are_not_logged() -> None:
    store, log, _ = logged_store()
    decisions = [store.check(FOUR, "a").allowed for _ in range(6)]
    assert decisions == [True] * 4 + [False] * 2
    assert len(log.quiet) + len(log.admitted) == 4


def test_a_merged_cluster_backlog_makes_the_next_unit_busy() -> None:
    store, log, _ = logged_store()
    store.merge_remote(FOUR, {"a": 1.5})
    store.check(FOUR, "a")
    assert (log.quiet, log.admitted) == ([], ["a"])


@given(gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=60))
def test_a_key_gets_at_most_one_quiet_unit_per_emission_interval(gaps: list[float]) -> None:
    store, log, clock = logged_store()
    quiet_at = []
    for gap in gaps:
        clock.now += gap
        before = len(log.quiet)
        store.check(FOUR, "a")
        if len(log.quiet) > before:
            quiet_at.append(clock.now)
    assert all(b - a >= FOUR.emission_interval - 1e-6 for a, b in itertools.pairwise(quiet_at))


def test_the_hold_is_capped_at_a_twelfth_of_the_window() -> None:
    assert quiet_hold(API, 0.1, 5.0) == 49  # 60 s / 12 = 5 s: sent within 50 flushes
    assert quiet_hold(GENERAL, 0.1, 5.0) == 49
    assert quiet_hold(GENERAL, 0.1, 2.0) == 19
    assert quiet_hold(RatePolicy("short", 10, 6), 0.1, 5.0) == 4  # 0.5 s
    assert quiet_hold(RatePolicy("tight", 10, 1), 0.1, 5.0) == 0  # < 2 flushes: no hold
    assert quiet_hold(API, 0.1, 0.0) == 0


def test_quiet_units_are_sent_hold_flushes_after_the_one_that_took_them() -> None:
    pending = PendingUnits(hold=2)
    pending.log.quiet.extend(["a", "a", "b"])
    assert pending.take() == {}
    pending.log.quiet.append("a")
    assert pending.take() == {}
    assert len(pending) == 4
    assert pending.take() == {"a": 3, "b": 1}
    assert pending.take() == {}
    assert len(pending) == 0


def test_busy_units_and_refunds_take_their_keys_held_units_along() -> None:
    pending = PendingUnits(hold=5)
    pending.log.quiet.extend(["a", "a", "b", "b", "c"])
    assert pending.take() == {}
    pending.log.admitted.append("a")
    pending.log.refunded.append("b")
    assert pending.take() == {"a": 3, "b": 1}
    assert dict(pending.held) == {"c": 1}


def test_without_a_hold_every_unit_goes_at_the_next_flush() -> None:
    pending = PendingUnits(hold=0)
    pending.log.quiet.extend(["a", "b"])
    pending.log.admitted.append("a")
    assert pending.take() == {"a": 2, "b": 1}


keys = st.sampled_from("abcd")
flush_logs = st.lists(
    st.tuples(st.lists(keys, max_size=4), st.lists(keys, max_size=4), st.lists(keys, max_size=2)),
    max_size=30,
)


@given(logs=flush_logs, hold=st.integers(min_value=0, max_value=6))
def test_every_unit_is_sent_once_and_none_waits_longer_than_the_hold(
    logs: list[tuple[list[str], list[str], list[str]]], hold: int
) -> None:
    """Per flush: busy, quiet and refunded units logged before it. Whatever the order, each
    key's units sent add up to its net units, and a quiet unit leaves by flush `hold` after
    the one that takes it."""
    pending = PendingUnits(hold)
    logged: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    quiet_since: dict[str, int] = {}
    idle = [([], [], [])] * (hold + 1)
    for flush, (busy, quiet, refunded) in enumerate(logs + idle):
        pending.log.admitted.extend(busy)
        pending.log.quiet.extend(quiet)
        pending.log.refunded.extend(refunded)
        logged.update(busy + quiet)
        logged.subtract(refunded)
        for key in quiet:
            quiet_since.setdefault(key, flush)
        out = pending.take()
        sent.update(out)
        for key in out:
            quiet_since.pop(key, None)
        assert all(flush - since < hold for since in quiet_since.values()), quiet_since
    assert sent == logged
    assert len(pending) == 0


@pytest.mark.parametrize("hold", [0, 3])
def test_has_nothing_to_send_once_everything_is_sent(hold: int) -> None:
    pending = PendingUnits(hold)
    pending.log.quiet.append("a")
    for _ in range(hold + 1):
        assert len(pending) == 1
        pending.take()
    assert len(pending) == 0
