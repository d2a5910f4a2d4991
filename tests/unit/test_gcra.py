"""GCRA store: exact limits, reset and refund arithmetic, expiry, the LRU cap, memory per key."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import Decision, GcraStore, measure_store_memory
from actors.ratelimit.policy import GENERAL, RatePolicy
from tests.support.services import free_port

FIVE = RatePolicy("five", 5, 900)


class Clock:
    """A clock we move by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_store(max_keys: int = 1_000_000) -> tuple[GcraStore, Clock]:
    clock = Clock()
    return GcraStore(max_keys=max_keys, clock=clock), clock


def test_burst_of_limit_then_denied_for_one_emission_interval() -> None:
    store, _ = make_store()
    decisions = [store.check(FIVE, "ip") for _ in range(6)]
    assert decisions[:5] == [
        Decision(True, 5, remaining, reset_after, 0.0)
        for remaining, reset_after in [(4, 180.0), (3, 360.0), (2, 540.0), (1, 720.0), (0, 900.0)]
    ]
    assert decisions[5] == Decision(False, 5, 0, 900.0, 180.0)


def test_one_more_unit_per_emission_interval() -> None:
    store, clock = make_store()
    for _ in range(5):
        store.check(FIVE, "ip")
    clock.now = 179.5
    assert store.check(FIVE, "ip") == Decision(False, 5, 0, 720.5, 0.5)
    clock.now = 180.0
    assert store.check(FIVE, "ip") == Decision(True, 5, 0, 900.0, 0.0)
    assert store.check(FIVE, "ip").retry_after == 180.0


def test_bucket_refills_fully_after_reset_after() -> None:
    store, clock = make_store()
    for _ in range(3):
        store.check(FIVE, "ip")
    clock.now = 200.0
    assert store.peek(FIVE, "ip") == Decision(True, 5, 3, 340.0, 0.0)
    clock.now = 540.0
    assert store.peek(FIVE, "ip") == Decision(True, 5, 5, 0.0, 0.0)


def test_peek_consumes_nothing() -> None:
    store, _ = make_store()
    for _ in range(5):
        store.check(FIVE, "ip")
    assert store.peek(FIVE, "ip") == Decision(False, 5, 0, 900.0, 180.0)
    assert store.peek(FIVE, "ip") == store.peek(FIVE, "ip")
    assert store.peek(FIVE, "other") == Decision(True, 5, 5, 0.0, 0.0)


def test_refund_gives_back_units_up_to_a_full_bucket() -> None:
    store, _ = make_store()
    for _ in range(5):
        store.check(FIVE, "ip")
    store.refund(FIVE, "ip")
    assert store.check(FIVE, "ip").allowed
    assert not store.check(FIVE, "ip").allowed
    for _ in range(10):
        store.refund(FIVE, "ip")
    assert len(store) == 0
    assert store.peek(FIVE, "ip").remaining == 5
    store.refund(FIVE, "never-seen")
    assert len(store) == 0


def test_cost_above_one() -> None:
    store, _ = make_store()
    assert store.check(FIVE, "ip", cost=3) == Decision(True, 5, 2, 540.0, 0.0)
    assert store.check(FIVE, "ip", cost=3) == Decision(False, 5, 2, 540.0, 180.0)
    assert store.check(FIVE, "ip", cost=2) == Decision(True, 5, 0, 900.0, 0.0)
    store.refund(FIVE, "ip", cost=2)
    assert store.peek(FIVE, "ip").remaining == 2


@pytest.mark.parametrize("cost", [0, -1, 6])
def test_cost_outside_one_to_limit_is_rejected(cost: int) -> None:
    store, _ = make_store()
    with pytest.raises(ValueError, match="cost must be within"):
        store.check(FIVE, "ip", cost=cost)


def test_inexact_emission_interval_still_admits_the_whole_burst() -> None:
    store, clock = make_store()
    assert all(store.check(GENERAL, "ip").allowed for _ in range(1000))
    denied = store.check(GENERAL, "ip")
    assert not denied.allowed
    assert denied.retry_after == 0.9
    clock.now = 0.9
    assert store.check(GENERAL, "ip").allowed


def test_policies_are_independent_per_key() -> None:
    store, _ = make_store()
    for _ in range(5):
        store.check(FIVE, "ip")
    assert store.check(GENERAL, "ip").remaining == 999
    assert store.check(FIVE, "other").remaining == 4


def test_idle_keys_expire_and_are_swept() -> None:
    store, clock = make_store()
    for i in range(100):
        store.check(FIVE, f"ip{i}")
    store.check(FIVE, "busy", cost=5)
    assert len(store) == 101
    clock.now = 180.0
    assert store.sweep(1000) == 100
    assert len(store) == 1
    clock.now = 900.0
    assert store.sweep(1000) == 1
    assert len(store) == 0


def test_inserts_are_counted_for_the_next_sweep_and_do_not_sweep() -> None:
    store, clock = make_store()
    for i in range(100):
        store.check(FIVE, f"old{i}")
    clock.now = 1000.0
    for i in range(50):
        store.check(FIVE, f"new{i}")
    assert len(store) == 150
    assert store.inserted_since_sweep == 150
    assert store.sweep(2 * store.inserted_since_sweep) == 100
    assert (len(store), store.inserted_since_sweep) == (50, 0)


def test_full_buckets_can_be_kept_a_while_before_the_sweep() -> None:
    clock = Clock()
    store = GcraStore(clock=clock, keep_full_seconds=10.0)
    store.check(FIVE, "returning")
    clock.now = 180.0 + 9.9
    assert store.sweep(10) == 0
    clock.now = 180.0 + 10.0
    assert store.sweep(10) == 1


def test_sweep_respects_its_budget() -> None:
    store, clock = make_store()
    for i in range(10):
        store.check(FIVE, f"ip{i}")
    clock.now = 1000.0
    assert store.sweep(3) == 3
    assert len(store) == 7


def test_cap_evicts_the_least_recently_used_key() -> None:
    store, _ = make_store(max_keys=3)
    for key in ("a", "b", "c"):
        store.check(FIVE, key)
    store.check(FIVE, "a")
    store.check(FIVE, "d")
    assert len(store) == 3
    assert store.peek(FIVE, "b").remaining == 5
    assert store.peek(FIVE, "a").remaining == 3
    assert store.peek(FIVE, "c").remaining == 4
    assert store.peek(FIVE, "d").remaining == 4


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["check", "merge"]), st.sampled_from("abcd")), max_size=40)
)
def test_the_cap_evicts_in_order_of_last_use(ops: list[tuple[str, str]]) -> None:
    """Decisions (refused ones too) and merges that raise a backlog count as a use."""
    store, _ = make_store(max_keys=3)
    by_use: list[str] = []  # the keys held, least recently used first
    for step, (op, key) in enumerate(ops):
        if op == "check":
            store.check(FIVE, key)
        else:
            store.merge_remote(FIVE, {key: 6.0 + step})  # always above the key's backlog
        if key in by_use:
            by_use.remove(key)
        elif len(by_use) == 3:
            del by_use[0]
        by_use.append(key)
        assert {k for k in "abcd" if store.peek(FIVE, k).remaining < 5} == set(by_use)


def test_a_large_table_at_the_cap_evicts_its_oldest_in_a_batch() -> None:
    store, _ = make_store(max_keys=2048)
    keys = [f"k{i}" for i in range(2048)]
    for key in keys:
        store.check(FIVE, key)
    store.check(FIVE, "k0")
    store.check(FIVE, "new")
    assert len(store) == 2047  # 2048 // 1024 = 2 evicted: k1 and k2, not the refreshed k0
    assert [store.peek(FIVE, key).remaining for key in ("k0", "k1", "k2", "k3")] == [3, 5, 5, 4]


def test_cap_holds_under_a_flood_of_distinct_keys() -> None:
    store, clock = make_store(max_keys=1000)
    for i in range(20_000):
        clock.now = i * 1e-5
        store.check(GENERAL, f"flood{i}")
        assert len(store) <= 1000
    assert len(store) == 1000


def test_merge_remote_raises_the_backlog_and_never_lowers_it() -> None:
    store, _ = make_store()
    store.merge_remote(FIVE, {"ip": 2.0})
    assert store.peek(FIVE, "ip") == Decision(True, 5, 3, 360.0, 0.0)
    store.merge_remote(FIVE, {"ip": 1.0})
    assert store.peek(FIVE, "ip").remaining == 3
    store.merge_remote(FIVE, {"ip": 7.0})
    assert store.peek(FIVE, "ip") == Decision(False, 5, 0, 1260.0, 540.0)
    store.merge_remote(FIVE, {"other": 0.0})
    assert len(store) == 1


requests = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400_000), st.integers(min_value=1, max_value=5)),
    max_size=80,
)
policies = st.builds(
    RatePolicy,
    name=st.just("p"),
    limit=st.integers(min_value=1, max_value=7),
    window_seconds=st.sampled_from([1, 7, 60, 900, 0.3]),
)


@settings(max_examples=300, deadline=None)
@given(policy=policies, gaps_and_costs=requests)
def test_store_is_exactly_a_leaky_bucket(
    policy: RatePolicy, gaps_and_costs: list[tuple[int, int]]
) -> None:
    """The store agrees, field by field, with a leaky bucket over integer nanoseconds."""
    store, clock = make_store()
    interval = round(policy.window_seconds * 1e9) // policy.limit
    burst = policy.limit * interval
    level = last = t_ns = 0
    for gap_us, raw_cost in gaps_and_costs:
        cost = min(raw_cost, policy.limit)
        t_ns += gap_us * 1000
        clock.now = t_ns / 1e9
        level = max(0, level - (t_ns - last))
        last = t_ns
        decision = store.check(policy, "k", cost)
        if level + cost * interval <= burst:
            level += cost * interval
            expected = Decision(True, policy.limit, (burst - level) // interval, level / 1e9, 0.0)
        else:
            retry = (level + cost * interval - burst) / 1e9
            remaining = (burst - level) // interval
            expected = Decision(False, policy.limit, remaining, level / 1e9, retry)
        assert decision == expected


@settings(max_examples=300, deadline=None)
@given(policy=policies, gaps_and_costs=requests)
def test_admitted_units_in_any_interval_are_bounded(
    policy: RatePolicy, gaps_and_costs: list[tuple[int, int]]
) -> None:
    """Units admitted at times within [a, b] never exceed limit + floor((b - a) / interval)."""
    store, clock = make_store()
    interval = round(policy.window_seconds * 1e9) // policy.limit
    admitted: list[tuple[int, int]] = []
    t_ns = 0
    for gap_us, raw_cost in gaps_and_costs:
        cost = min(raw_cost, policy.limit)
        t_ns += gap_us * 1000
        clock.now = t_ns / 1e9
        if store.check(policy, "k", cost).allowed:
            admitted.append((t_ns, cost))
    for i, (start, _) in enumerate(admitted):
        units = 0
        for end, cost in admitted[i:]:
            units += cost
            assert units <= policy.limit + (end - start) // interval


def test_the_interval_bound_is_tight() -> None:
    store, clock = make_store()
    admitted = 0
    for step in range(5 * 180 + 1):
        clock.now = float(step)
        while store.check(FIVE, "ip").allowed:
            admitted += 1
    assert admitted == 5 + 900 // 180


def test_memory_per_key_and_cap() -> None:
    used = measure_store_memory(100_000)
    per_key = used / 100_000
    print(f"GcraStore: {per_key:.0f} bytes per key at 100k keys")
    assert per_key < 400
    capped = measure_store_memory(100_000, max_keys=10_000)
    assert capped < used / 4


@pytest.mark.slow
def test_one_million_keys_fit_in_a_bounded_footprint() -> None:
    """The issue's figure: a million distinct client keys, each one request, held at once."""
    used = measure_store_memory(1_000_000)
    assert used / 1_000_000 < 300  # bytes per key; about 120 measured here


async def test_the_actor_reclaims_idle_keys_at_the_pace_they_arrive() -> None:
    clock = Clock()
    actor = RateLimitActor(redis=None, instance_id="test", flush_seconds=0.01, clock=clock)
    for i in range(20_000):
        assert actor.check_local(FIVE, f"flood{i}").allowed
    assert actor.details()["keys"] == 20_000
    clock.now = 180.0 + 10.0  # every bucket full again, and kept its 10 s
    async with anyio.create_task_group() as tg:
        await tg.start(actor.run)
        with anyio.fail_after(5):
            while actor.details()["keys"] == 20_000:
                await anyio.sleep(0.001)
        tg.cancel_scope.cancel()
    assert actor.details()["keys"] == 0  # one sweep took them all, not its floor of 2,000


async def test_the_actor_decides_in_the_mode_it_is_in() -> None:
    """Synced, the policy itself; once the Redis link is lost, the instance's share, counted."""
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    actor = RateLimitActor(redis=redis, instance_id="test", redis_timeout=0.5)
    modes: list[bool] = []
    actor.on_change = lambda: modes.append(actor.degraded)
    assert all(actor.check_local(FIVE, "a").allowed for _ in range(5))
    assert not actor.check_local(FIVE, "a").allowed
    assert actor.details()["fallback_decisions"] == 0
    try:
        await actor.check(RatePolicy("login", 3, 900, strict=True), "a")  # nothing listens
    finally:
        await redis.aclose()
    assert modes == [True]
    before = int(str(actor.details()["fallback_decisions"]))
    assert all(actor.check_local(FIVE, "b").allowed for _ in range(5))
    assert not actor.check_local(FIVE, "b").allowed
    assert actor.details()["fallback_decisions"] == before + 6
