"""Events that instances share over the Redis bus: one tagged union, one decoder, one encoder.

Every event names its `origin` (the publishing instance's id) so that an
instance can skip its own events when they come back from Redis, and carries
`seq`, set by the publishing bus: 1, 2, 3... per origin over every event type,
so that a gap shows a receiver that an event was lost. To add an event, define
a Struct with a unique `tag`, `origin` and `seq`, and add it to `BusEvent`.
"""

from __future__ import annotations

import msgspec


class SessionRevoked(msgspec.Struct, tag="session.revoked", kw_only=True):
    """One session was revoked (logout, refresh-token reuse, admin action)."""

    session_id: str
    user_id: str
    origin: str
    seq: int = 0
    sent_at: float = 0.0
    """Unix seconds on the announcing instance when it published (0: unknown)."""


class UserSessionsRevoked(msgspec.Struct, tag="user.sessions_revoked", kw_only=True):
    """Every token of a user issued before `valid_after` (unix seconds) is void.

    `session_ids` are the sessions revoked by the same change: they also void
    the tokens issued within the second of `valid_after` but before it.
    """

    user_id: str
    valid_after: float
    session_ids: list[str]
    origin: str
    seq: int = 0
    sent_at: float = 0.0


class CacheTagsInvalidated(msgspec.Struct, tag="cache.tags_invalidated", kw_only=True):
    """Cache tags whose version Redis moved on: `versions[i]` is `tags[i]`'s new version."""

    tags: list[str]
    versions: list[int]
    origin: str
    seq: int = 0


class ReaderWrote(msgspec.Struct, tag="reads.writer_wrote", kw_only=True):
    """A user committed a write at the primary's WAL `position` (bytes): their reads wait for
    the read replica to replay it."""

    user_id: str
    position: int
    origin: str
    seq: int = 0


BusEvent = SessionRevoked | UserSessionsRevoked | CacheTagsInvalidated | ReaderWrote

event_decoder = msgspec.json.Decoder(BusEvent)
event_encoder = msgspec.json.Encoder()
