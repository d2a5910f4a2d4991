"""The cache's in-process tier against a model: bounded, and never serving a bumped body."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.cache_local import LocalTier

KEYS = st.sampled_from([f"k{i}" for i in range(12)])
TAGS = st.sampled_from([f"t{i}" for i in range(6)])


class LocalTierModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.max_entries = 4
        self.tier = LocalTier(
            max_entries=self.max_entries,
            trust_seconds=1.0,
            authoritative=True,
            clock=lambda: self.now,
            max_tags=3,
        )
        self.tags_of: dict[str, tuple[str, ...]] = {}
        self.written: dict[str, tuple[int, bytes]] = {}
        self.bumped_at: dict[str, int] = {}
        self.step = 0

    def _tags(self, key: str) -> tuple[str, ...]:
        return self.tags_of.setdefault(key, ("*", f"t{int(key[1:]) % 6}"))

    @rule(key=KEYS, ttl=st.sampled_from([0.5, 5.0]))
    def put(self, key: str, ttl: float) -> None:
        self.step += 1
        tags = self._tags(key)
        versions = self.tier.current_versions(tags)
        body = f"{key}@{self.step}".encode()
        if self.tier.put(key, tags, versions, body, ttl):
            self.written[key] = (self.step, body)

    @rule(tag=TAGS)
    def bump(self, tag: str) -> None:
        self.step += 1
        self.tier.bump([tag])
        self.bumped_at[tag] = self.step

    @rule()
    def bump_everything(self) -> None:
        self.step += 1
        self.tier.bump(["*"])
        self.bumped_at["*"] = self.step

    @rule(seconds=st.sampled_from([0.1, 1.0]))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule(key=KEYS)
    def lookup(self, key: str) -> None:
        body = self.tier.lookup(key, self._tags(key))
        if body is None:
            return
        step, written = self.written[key]
        assert body == written
        for tag in self._tags(key):
            assert self.bumped_at.get(tag, 0) < step, f"{key} served after {tag} was bumped"

    @rule()
    def prune(self) -> None:
        self.tier.prune()

    @invariant()
    def bounded(self) -> None:
        assert len(self.tier) <= self.max_entries
        assert self.tier.tag_count <= 3


TestLocalTier = LocalTierModel.TestCase
TestLocalTier.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


def test_a_body_loaded_before_a_bump_is_not_kept() -> None:
    tier = LocalTier(max_entries=2, trust_seconds=1.0, authoritative=True, clock=lambda: 0.0)
    versions = tier.current_versions(("*", "t"))
    tier.bump(["t"])
    assert not tier.put("k", ("*", "t"), versions, b"stale", 10)
    assert tier.lookup("k", ("*", "t")) is None


def test_with_redis_records_are_trusted_for_trust_seconds_only() -> None:
    now = [0.0]
    tier = LocalTier(max_entries=2, trust_seconds=1.0, authoritative=False, clock=lambda: now[0])
    tags = ("*", "t")
    tier.confirm(tags, (5, 7), asked_at=0.0)
    assert tier.put("k", tags, (5, 7), b"body", 60)
    now[0] = 0.9
    assert tier.lookup("k", tags) == b"body"
    now[0] = 1.0
    assert tier.lookup("k", tags) is None
    tier.confirm(tags, (5, 7), asked_at=1.0)
    assert tier.lookup("k", tags) == b"body"
    tier.distrust()
    assert tier.lookup("k", tags) is None
    now[0] = 1.2
    tier.confirm(tags, (5, 7), asked_at=1.2)
    assert tier.lookup("k", tags) == b"body"
    tier.raise_versions(["t"], [8])
    assert tier.lookup("k", tags) is None


def test_an_answer_older_than_an_event_does_not_lower_a_version() -> None:
    now = [10.0]
    tier = LocalTier(max_entries=2, trust_seconds=1.0, authoritative=False, clock=lambda: now[0])
    tier.confirm(["t"], [3], asked_at=9.0)
    tier.raise_versions(["t"], [4])
    tier.confirm(["t"], [3], asked_at=9.5)
    assert not tier.matches(["t"], [3])
    assert tier.matches(["t"], [4])
    now[0] = 12.0
    tier.confirm(["t"], [2], asked_at=11.0)
    assert tier.matches(["t"], [2]), "a later answer from Redis wins, even a lower one"
