"""The cache's in-process tier: a bounded LRU of entries, and the tag versions it last knew.

An entry keeps the versions its tags had when its body was loaded; it is served only while
every one of those tags still has that version here AND (with Redis) that version
was confirmed by Redis within `trust_seconds`; events and invalidations raise versions
in between (so entries they concern stop matching at once) but never extend that trust.
A record that is missing, or older than that, is a miss that goes to Redis, which confirms
the versions again. `distrust()` makes every record stale at once (bus reconnect, restart).

Without Redis (`authoritative`) the versions kept here are the truth: records never go
stale, invalidation takes the next value of one counter, and a record created again after
it was dropped starts from that counter too, so an old entry can never match it.

Both tables are bounded: past `max_entries` the least recently used entry goes, past
`max_tags` the record touched longest ago (which costs a round trip, or in authoritative
mode a miss, for the entries that used it).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class LocalEntry:
    tags: tuple[str, ...]
    versions: tuple[int, ...]
    body: bytes
    expires_at: float


@dataclass(slots=True)
class TagRecord:
    version: int
    checked_at: float
    """When the Redis read that confirmed `version` was sent (the clock of this tier)."""
    raised_at: float
    """When an event or an invalidation on this instance last raised `version`."""


class LocalTier:
    def __init__(
        self,
        *,
        max_entries: int,
        trust_seconds: float,
        authoritative: bool,
        clock: Callable[[], float],
        max_tags: int | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max_entries = max_entries
        self._max_tags = max_tags or max(1024, 4 * max_entries)
        self._trust = trust_seconds
        self._authoritative = authoritative
        self._clock = clock
        self._entries: OrderedDict[str, LocalEntry] = OrderedDict()
        self._tags: OrderedDict[str, TagRecord] = OrderedDict()
        self._trusted_since = -math.inf
        self._counter = itertools.count(1)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tag_count(self) -> int:
        return len(self._tags)

    # -- reads --------------------------------------------------------------------------------

    def lookup(self, key: str, tags: tuple[str, ...]) -> bytes | None:
        """The body if the entry is live and every tag's version is current and trusted."""
        entry = self._entries.get(key)
        if entry is None or entry.tags != tags:
            return None
        now = self._clock()
        if entry.expires_at <= now:
            del self._entries[key]
            return None
        records = self._tags
        for tag, version in zip(tags, entry.versions, strict=True):
            record = records.get(tag)
            if record is None or record.version != version or not self._trusted(record, now):
                return None
        self._entries.move_to_end(key)
        return entry.body

    def entry_versions(self, key: str, tags: tuple[str, ...]) -> tuple[int, ...] | None:
        """The versions a live entry for `key` was loaded under, trusted or not."""
        entry = self._entries.get(key)
        if entry is None or entry.tags != tags or entry.expires_at <= self._clock():
            return None
        return entry.versions

    def current_versions(self, tags: Sequence[str]) -> tuple[int, ...]:
        """Authoritative mode: the versions now, creating the records that are missing."""
        now = self._clock()
        versions = []
        for tag in tags:
            record = self._tags.get(tag)
            if record is None:
                record = self._add_record(tag, next(self._counter), now)
            versions.append(record.version)
        return tuple(versions)

    def matches(self, tags: Sequence[str], versions: Sequence[int]) -> bool:
        """Every tag's record here has exactly these versions (nothing raised them meanwhile)."""
        for tag, version in zip(tags, versions, strict=True):
            record = self._tags.get(tag)
            if record is None or record.version != version:
                return False
        return True

    # -- writes -------------------------------------------------------------------------------

    def put(
        self, key: str, tags: tuple[str, ...], versions: tuple[int, ...], body: bytes, ttl: float
    ) -> bool:
        """Keep a body loaded under `versions`, unless a tag moved on while it was loaded."""
        if ttl <= 0 or not self.matches(tags, versions):
            return False
        entries = self._entries
        entries[key] = LocalEntry(tags, versions, body, self._clock() + ttl)
        entries.move_to_end(key)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)
            self.evictions += 1
        return True

    def confirm(self, tags: Sequence[str], versions: Sequence[int], asked_at: float) -> None:
        """Record versions read from Redis by a request sent at `asked_at`.

        What an event or a later read already put here is newer than this answer may be, so
        then the higher version wins; otherwise Redis's answer does (even a lower one: a tag
        key that expired is created again, higher, but a lost database could set it back).
        """
        for tag, version in zip(tags, versions, strict=True):
            record = self._tags.get(tag)
            if record is None:
                self._add_record(tag, version, asked_at)
                continue
            if record.raised_at >= asked_at or record.checked_at > asked_at:
                record.version = max(record.version, version)
            else:
                record.version = version
            record.checked_at = max(record.checked_at, asked_at)
            self._tags.move_to_end(tag)

    def raise_versions(
        self, tags: Sequence[str], versions: Sequence[int], *, checked_at: float | None = None
    ) -> None:
        """Apply versions Redis moved tags to; with `checked_at`, create missing records."""
        now = self._clock()
        for tag, version in zip(tags, versions, strict=True):
            record = self._tags.get(tag)
            if record is None:
                if checked_at is not None:
                    self._add_record(tag, version, checked_at).raised_at = now
                continue
            record.version = max(record.version, version)
            record.raised_at = now

    def bump(self, tags: Iterable[str]) -> None:
        """Authoritative mode: move each tag to a version no entry was loaded under."""
        now = self._clock()
        for tag in tags:
            record = self._tags.get(tag)
            if record is None:
                record = self._add_record(tag, 0, now)
            record.version = next(self._counter)
            record.raised_at = now

    def forget(self, tags: Iterable[str]) -> None:
        """Drop these tags' records: their entries are not served until Redis confirms again."""
        for tag in tags:
            self._tags.pop(tag, None)

    def distrust(self) -> None:
        """Every record confirmed before now must be confirmed again before it is used."""
        self._trusted_since = self._clock()

    def prune(self) -> int:
        """Drop expired entries; return how many went."""
        now = self._clock()
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            del self._entries[key]
        return len(expired)

    # -- internals ----------------------------------------------------------------------------

    def _trusted(self, record: TagRecord, now: float) -> bool:
        if self._authoritative:
            return True
        return record.checked_at > self._trusted_since and now - record.checked_at < self._trust

    def _add_record(self, tag: str, version: int, checked_at: float) -> TagRecord:
        record = self._tags[tag] = TagRecord(version, checked_at, -math.inf)
        while len(self._tags) > self._max_tags:
            self._tags.popitem(last=False)
        return record
