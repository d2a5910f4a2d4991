"""SessionActor: answers "is this access token still good?" from memory, and writes lastSeen behind.

State, plain dicts read without a lock or an await (the event loop is single-threaded):
- `_revoked`: session id -> until when the entry matters (revocation time + retention);
- `_valid_after`: user id -> the user's `tokens_valid_after` (unix seconds), kept while
  `valid_after + retention` is in the future;
- `_last_seen`: session id -> last request time, flushed in one batched UPDATE that locks its
  rows in id order and skips those another transaction holds (a refresh, another worker's
  flush): lastSeen is a hint, and waiting for a row while holding thousands would stall every
  request that needs one of them.
Retention is the access-token lifetime plus `RETENTION_MARGIN_SECONDS` (clock skew and
verification leeway): past it, every token an entry concerns has expired, so the entry is
pruned and memory stays bounded by the revocations of one token lifetime.

Timestamps. Access tokens carry `iat` in milliseconds and `valid_after` comes from the
clock of the process that made the change, so a token is void exactly when
`iat < valid_after`: one issued a millisecond after a password change is good, one issued
a millisecond before is not. The identity service also revokes the user's other sessions
by id (`session_ids`), which covers clock skew between instances.

Trust. PostgreSQL is the source of truth; the identity service commits a change there,
then calls `session_revoked` / `user_sessions_revoked`, which apply it here at once and
publish it on the bus; peers apply it when it arrives. Local state is trusted:
- without Redis (single-instance mode), once loaded from the database at start;
- with Redis, while the bus is connected AND this actor has resynced from the database
  since the bus's last (re)connection (`link_generation`).
Otherwise `check_local` answers None and callers fall back to `check_database`, which asks
PostgreSQL (cached per session for `fallback_cache_seconds`): the actor fails closed and
reports itself degraded instead of trusting state that may have missed a revocation.

A bus event can still be lost while both links stand (its publisher dropped it, or died
between its commit and the publish), so nothing rests on the bus alone:
- every `resync_seconds` the actor reads from PostgreSQL what changed since its watermark
  (the database's time at its last read, less `RESYNC_OVERLAP_SECONDS` for transactions
  that committed after their `now()` and for clocks that disagree) and merges it in;
- the bus numbers each instance's events; a gap in a peer's numbers means an event was
  lost, and the actor stops trusting its state until a full resync.
So a revocation is refused everywhere at most `resync_seconds` (plus one read) after it
committed, whatever single part fails.

A full resync loads the revocations of the last retention period into fresh dicts; changes
applied while it reads are kept aside and folded in, so none is lost to the swap.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.abc
import msgspec
import psycopg

from actors.base import Actor
from actors.bus import SyncBus
from schemas.events import SessionRevoked, UserSessionsRevoked

logger = logging.getLogger("sevenp.sessions")

RETENTION_MARGIN_SECONDS = 60.0
RESYNC_OVERLAP_SECONDS = 30.0
MAX_PENDING_LAST_SEEN = 100_000
MAX_CACHED_VERDICTS = 100_000
_IDLE_TICK_SECONDS = 1.0
_DB_ERRORS = (psycopg.Error, TimeoutError, OSError)


class Standing(msgspec.Struct, frozen=True):
    """What the database says of one session: live (not revoked or expired, its user
    active), and the user's token cut-off (unix seconds; None when there is none)."""

    live: bool
    valid_after: float | None


class Cutoff(msgspec.Struct, frozen=True):
    """A session revoked at `at`, or a user whose tokens issued before `at` are void."""

    id: str
    at: float


class Cutoffs(msgspec.Struct, frozen=True):
    """Sessions revoked and users invalidated, read at `as_of` (the database's unix time)."""

    sessions: list[Cutoff]
    users: list[Cutoff]
    as_of: float


class SessionStore(Protocol):
    """What the actor reads from and writes to the database; each call is one checkout."""

    async def standing(self, session_id: uuid.UUID, user_id: uuid.UUID) -> Standing | None:
        """None when there is no such session of that user."""
        ...

    async def cutoffs_since(self, since: float | None, within_seconds: float) -> Cutoffs:
        """Sessions revoked and users invalidated after `since` (database time; None: any
        time) and in the last `within_seconds`."""
        ...

    async def write_last_seen(self, session_ids: list[uuid.UUID], seen_at: list[float]) -> None:
        """Move each session's lastSeen forward, skipping rows another transaction holds."""
        ...


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What PostgreSQL said about one session, and when (monotonic seconds) it was asked."""

    asked_at: float
    live: bool
    valid_after: float | None

    def accepts(self, issued_at: float) -> bool:
        return self.live and (self.valid_after is None or issued_at >= self.valid_after)


@dataclass(slots=True)
class _Journal:
    """Changes applied while a resync reads the database, folded into its result."""

    revoked: dict[str, float] = field(default_factory=dict)
    valid_after: dict[str, float] = field(default_factory=dict)


class SessionActor(Actor):
    """Revoked sessions and per-user token cut-offs in memory; lastSeen written behind."""

    def __init__(
        self,
        *,
        store: SessionStore,
        bus: SyncBus,
        instance_id: str,
        access_ttl_seconds: float,
        last_seen_flush_seconds: float = 5.0,
        fallback_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        db_timeout_seconds: float = 5.0,
        resync_seconds: float = 5.0,
    ) -> None:
        self.name = "sessions"
        self._store = store
        self._bus = bus
        self._instance_id = instance_id
        self._retention = access_ttl_seconds + RETENTION_MARGIN_SECONDS
        self._flush_every = last_seen_flush_seconds
        self._prune_every = min(60.0, max(1.0, access_ttl_seconds / 4))
        self._fallback_cache_seconds = fallback_cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._db_timeout = db_timeout_seconds
        self._resync_every = resync_seconds
        self._watermark: float | None = None
        self._revoked: dict[str, float] = {}
        self._valid_after: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}
        self._verdicts: dict[tuple[str, str], _Verdict] = {}
        self._journal: _Journal | None = None
        self._synced_generation: int | None = None
        self._wake: anyio.Event | None = None
        self._stop_requested: anyio.Event | None = None
        self._database_checks = 0
        self._cache_hits = 0
        self._resyncs = 0
        self._catch_ups = 0
        self._bus_gaps = 0
        self._last_seen_flushed = 0
        self._last_seen_dropped = 0
        self.revocations_applied = 0
        """Revocations (of a session, or of a user's sessions) applied here, from any instance."""
        self.on_propagation: Callable[[float], None] | None = None
        """Told, in seconds, how long each revocation announced elsewhere took to arrive."""
        bus.subscribe(SessionRevoked, self._on_session_revoked)
        bus.subscribe(UserSessionsRevoked, self._on_user_sessions_revoked)
        bus.on_connected(self._on_bus_connected)
        bus.on_gap(self._on_bus_gap)

    # -- hot path ---------------------------------------------------------------------------

    def check_local(self, *, user_id: str, session_id: str, issued_at: float) -> bool | None:
        """True/False from memory, or None when memory is not trusted (see the module doc)."""
        if not self._trusted():
            return None
        return not self._known_void(user_id, session_id, issued_at)

    async def check_database(self, *, user_id: str, session_id: str, issued_at: float) -> bool:
        """Ask PostgreSQL (session live, user active, token not older than the cut-off).

        Answers are cached per session for `fallback_cache_seconds`; what this instance
        already knows to be void is refused without asking. Raises if the database fails.
        """
        if self._known_void(user_id, session_id, issued_at):
            return False
        key = (session_id, user_id)
        verdict = self._verdicts.get(key)
        if (
            verdict is not None
            and self._monotonic() - verdict.asked_at < self._fallback_cache_seconds
        ):
            self._cache_hits += 1
        else:
            verdict = await self._ask_database(session_id, user_id)
            if len(self._verdicts) >= MAX_CACHED_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        # A revocation may have been applied here while the database answered.
        return verdict.accepts(issued_at) and not self._known_void(user_id, session_id, issued_at)

    async def is_valid(self, *, user_id: str, session_id: str, issued_at: float) -> bool:
        local = self.check_local(user_id=user_id, session_id=session_id, issued_at=issued_at)
        if local is not None:
            return local
        return await self.check_database(
            user_id=user_id, session_id=session_id, issued_at=issued_at
        )

    def touch(self, session_id: str) -> None:
        """Note a request on the session; written to the database at the next flush."""
        pending = self._last_seen
        if len(pending) >= MAX_PENDING_LAST_SEEN and session_id not in pending:
            self._last_seen_dropped += 1
            return
        pending[session_id] = self._clock()

    @property
    def degraded(self) -> bool:
        """Local state is not trusted: requests are checked against the database."""
        return not self._trusted()

    # -- writes, called by the identity service after committing -----------------------------

    async def session_revoked(self, *, session_id: str, user_id: str) -> None:
        self._revoke_session(session_id)
        await self._bus.publish(
            SessionRevoked(
                session_id=session_id,
                user_id=user_id,
                origin=self._instance_id,
                sent_at=time.time(),
            )
        )

    async def user_sessions_revoked(
        self, *, user_id: str, valid_after: float, session_ids: list[str]
    ) -> None:
        self._invalidate_user(user_id, valid_after, session_ids)
        await self._bus.publish(
            UserSessionsRevoked(
                user_id=user_id,
                valid_after=valid_after,
                session_ids=list(session_ids),
                origin=self._instance_id,
                sent_at=time.time(),
            )
        )

    # -- maintenance ------------------------------------------------------------------------

    def prune(self) -> int:
        """Forget entries no live token can concern any more; return how many were dropped."""
        now = self._clock()
        expired_sessions = [sid for sid, until in self._revoked.items() if until <= now]
        for session_id in expired_sessions:
            del self._revoked[session_id]
        horizon = now - self._retention
        expired_users = [uid for uid, after in self._valid_after.items() if after <= horizon]
        for user_id in expired_users:
            del self._valid_after[user_id]
        stale_before = self._monotonic() - self._fallback_cache_seconds
        stale_verdicts = [k for k, v in self._verdicts.items() if v.asked_at < stale_before]
        for key in stale_verdicts:
            del self._verdicts[key]
        return len(expired_sessions) + len(expired_users)

    async def flush_last_seen(self) -> None:
        """Write every pending lastSeen in one UPDATE; on failure they wait for the next one."""
        if not self._last_seen:
            return
        pending, self._last_seen = self._last_seen, {}
        ids: list[uuid.UUID] = []
        stamps: list[float] = []
        for session_id, seen_at in pending.items():
            try:
                ids.append(uuid.UUID(session_id))
            except ValueError:
                continue
            stamps.append(seen_at)
        try:
            with anyio.fail_after(self._db_timeout):
                await self._store.write_last_seen(ids, stamps)
        except BaseException:
            for session_id, seen_at in pending.items():
                self._last_seen.setdefault(session_id, seen_at)
            raise
        self._last_seen_flushed += len(ids)

    def request_stop(self) -> bool:
        if self._stop_requested is None or self._wake is None:
            return False
        self._stop_requested.set()
        self._wake.set()
        return True

    def details(self) -> Mapping[str, object]:
        return {
            "mode": self._mode(),
            "revoked": len(self._revoked),
            "users_invalidated": len(self._valid_after),
            "pending_last_seen": len(self._last_seen),
            "database_checks": self._database_checks,
            "cache_hits": self._cache_hits,
            "resyncs": self._resyncs,
            "catch_ups": self._catch_ups,
            "bus_gaps": self._bus_gaps,
            "last_seen_flushed": self._last_seen_flushed,
            "last_seen_dropped": self._last_seen_dropped,
        }

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        stop_requested = self._stop_requested = anyio.Event()
        self._wake = anyio.Event()
        await self._try(self._resync, "resync")
        task_status.started()
        try:
            start = anyio.current_time()
            next_flush, next_prune = start + self._flush_every, start + self._prune_every
            next_catch_up = start + self._resync_every
            while not stop_requested.is_set():
                now = anyio.current_time()
                wait = min(next_flush, next_prune, next_catch_up, now + _IDLE_TICK_SECONDS) - now
                with anyio.move_on_after(max(0.0, wait)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                if self._synced_generation != self._bus.link_generation:
                    await self._try(self._resync, "resync")
                    next_catch_up = anyio.current_time() + self._resync_every
                now = anyio.current_time()
                if now >= next_catch_up:
                    await self._try(self._catch_up, "catch-up")
                    next_catch_up = anyio.current_time() + self._resync_every
                    now = anyio.current_time()
                if now >= next_flush:
                    await self._try(self.flush_last_seen, "lastSeen flush")
                    next_flush = now + self._flush_every
                if now >= next_prune:
                    self.prune()
                    next_prune = now + self._prune_every
        finally:
            self._stop_requested = None
            with anyio.move_on_after(self._db_timeout, shield=True):
                await self._try(self.flush_last_seen, "final lastSeen flush")

    # -- internals --------------------------------------------------------------------------

    def _trusted(self) -> bool:
        bus = self._bus
        return self._synced_generation == bus.link_generation and (
            bus.connected or not bus.redis_configured
        )

    def _mode(self) -> str:
        if not self._trusted():
            return "degraded"
        return "synced" if self._bus.redis_configured else "local"

    def _known_void(self, user_id: str, session_id: str, issued_at: float) -> bool:
        if session_id in self._revoked:
            return True
        valid_after = self._valid_after.get(user_id)
        return valid_after is not None and issued_at < valid_after

    def _revoke_session(self, session_id: str) -> None:
        until = self._clock() + self._retention
        _keep_latest(self._revoked, session_id, until)
        if self._journal is not None:
            _keep_latest(self._journal.revoked, session_id, until)

    def _invalidate_user(self, user_id: str, valid_after: float, session_ids: list[str]) -> None:
        _keep_latest(self._valid_after, user_id, valid_after)
        if self._journal is not None:
            _keep_latest(self._journal.valid_after, user_id, valid_after)
        for session_id in session_ids:
            self._revoke_session(session_id)

    def _on_session_revoked(self, event: SessionRevoked) -> None:
        self.revocations_applied += 1
        self._revoke_session(event.session_id)
        self._arrived(event.sent_at)

    def _on_user_sessions_revoked(self, event: UserSessionsRevoked) -> None:
        self.revocations_applied += 1
        self._invalidate_user(event.user_id, event.valid_after, event.session_ids)
        self._arrived(event.sent_at)

    def _arrived(self, sent_at: float) -> None:
        if sent_at > 0 and self.on_propagation is not None:
            self.on_propagation(max(0.0, time.time() - sent_at))

    async def _on_bus_connected(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _on_bus_gap(self) -> None:
        self._bus_gaps += 1
        self._synced_generation = None
        if self._wake is not None:
            self._wake.set()

    async def _resync(self) -> None:
        generation, gaps = self._bus.link_generation, self._bus_gaps
        journal = self._journal = _Journal()
        try:
            with anyio.fail_after(self._db_timeout):
                found = await self._store.cutoffs_since(None, self._retention)
        finally:
            self._journal = None
        revoked = {cut.id: cut.at + self._retention for cut in found.sessions}
        valid_after = {cut.id: cut.at for cut in found.users}
        for session_id, until in journal.revoked.items():
            _keep_latest(revoked, session_id, until)
        for user_id, after in journal.valid_after.items():
            _keep_latest(valid_after, user_id, after)
        self._revoked, self._valid_after = revoked, valid_after
        self._watermark = found.as_of
        # A gap noticed while reading may be of an event committed after the read began.
        self._synced_generation = generation if self._bus_gaps == gaps else None
        self._resyncs += 1
        logger.info(
            "resynced from the database: %d revoked sessions, %d users invalidated",
            len(revoked),
            len(valid_after),
        )

    async def _catch_up(self) -> None:
        """Merge in what changed in the database since the watermark."""
        if self._watermark is None:
            await self._resync()
            return
        since = self._watermark - RESYNC_OVERLAP_SECONDS
        with anyio.fail_after(self._db_timeout):
            found = await self._store.cutoffs_since(since, self._retention)
        for cut in found.sessions:
            _keep_latest(self._revoked, cut.id, cut.at + self._retention)
        for cut in found.users:
            _keep_latest(self._valid_after, cut.id, cut.at)
        self._watermark = found.as_of
        self._catch_ups += 1

    async def _ask_database(self, session_id: str, user_id: str) -> _Verdict:
        asked_at = self._monotonic()
        try:
            session_uuid, user_uuid = uuid.UUID(session_id), uuid.UUID(user_id)
        except ValueError:
            return _Verdict(asked_at, live=False, valid_after=None)
        self._database_checks += 1
        with anyio.fail_after(self._db_timeout):
            standing = await self._store.standing(session_uuid, user_uuid)
        if standing is None:
            return _Verdict(asked_at, live=False, valid_after=None)
        return _Verdict(asked_at, live=standing.live, valid_after=standing.valid_after)

    async def _try(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        try:
            await step()
        except _DB_ERRORS as exc:
            logger.warning("%s failed: %r", what, exc)


def _keep_latest(entries: dict[str, float], key: str, value: float) -> None:
    if entries.get(key, -math.inf) < value:
        entries[key] = value
