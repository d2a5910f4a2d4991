"""Which server answers a read: the read replica (`DATABASE_READ_URL`) or the primary.

Reads that may run on the replica (search, analytics, gradebook, exports) open
`Database.read_unit(reader)`; everything else stays on the primary. A read goes to the replica
only when all of these hold, else to the primary:

- the replica answered its last probe and its lag is within `DATABASE_READ_MAX_LAG_SECONDS`
  (the health actor probes it every `HEALTH_INTERVAL_SECONDS`; see `replica_probe`);
- its pooled connection works (a broken one sends the read, and every read until the next
  good probe, to the primary: a stopped replica costs no failed request);
- the reader has no write the replica has not yet replayed (read-your-writes).

Read-your-writes. When a request's unit of work commits a write for a signed-in user, the
unit asks the primary for its WAL position (`pg_current_wal_lsn()`, one round trip on the
connection it already holds, only when a replica is configured) and `wrote(user, position)`
keeps it: in this process, and announced on the bus so the other instances keep it too. The
probe reads the replica's replay position (`pg_last_wal_replay_lsn()`); a reader whose last
write lies beyond it reads the primary. Marks the replica has passed are forgotten, and at
most `max_marks` are kept (the oldest go first: the replica has long passed them).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import psycopg
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from actors.health import Probe
from server.db.pool import Pool
from server.db.queries import replica as q

logger = logging.getLogger("sevenp.db.replica")

Announce = Callable[[str, int], Awaitable[None]]

PRIMARY = "primary"
REPLICA = "replica"
RECENT_WRITE = "recent_write"


class ReadRouting:
    """The replica's last known state, the readers' write marks, and the routing they decide."""

    def __init__(self, pool: Pool, *, max_lag_seconds: float, max_marks: int = 100_000) -> None:
        self.pool = pool
        self.max_lag_seconds = max_lag_seconds
        self._max_marks = max_marks
        self._marks: OrderedDict[str, int] = OrderedDict()
        self.replayed = -1
        """The replica's replay position at its last probe (-1: not yet known)."""
        self.lag_seconds: float | None = None
        self._unusable: str | None = "replica not probed yet"
        self._label = "replica_unknown"
        self.reads: Counter[tuple[str, str]] = Counter()
        """Reads routed so far, by (server, reason): the reason a read went to the primary."""
        self.announce: Announce | None = None

    @property
    def unusable(self) -> str | None:
        """Why reads go to the primary now, or None while the replica serves them."""
        return self._unusable

    def route(self, reader: str | None) -> Pool | None:
        """The replica's pool for this reader's read, or None for the primary."""
        if self._unusable is not None:
            self.reads[PRIMARY, self._label] += 1
            return None
        if reader is not None:
            mark = self._marks.get(reader)
            if mark is not None and mark > self.replayed:
                self.reads[PRIMARY, RECENT_WRITE] += 1
                return None
        self.reads[REPLICA, ""] += 1
        return self.pool

    def fell_back(self, error: BaseException) -> None:
        """A replica connection failed: reads go to the primary until a probe says otherwise."""
        self._label = "replica_down"
        self._unusable = f"replica connection failed: {type(error).__name__}"
        self.reads[PRIMARY, "replica_failed"] += 1
        logger.warning("read replica unusable, reads go to the primary: %r", error)

    def probed(self, replayed: int | None, lag_seconds: float | None) -> str | None:
        """Record a probe's answer; the reason reads go to the primary, if they must."""
        self.lag_seconds = lag_seconds
        if replayed is not None:
            self.replayed = replayed
            self._forget_replayed()
        if replayed is None or lag_seconds is None:
            self._label, self._unusable = "replica_unknown", "replica replay position unknown"
        elif lag_seconds > self.max_lag_seconds:
            self._label = "replica_lagging"
            self._unusable = (
                f"replica {lag_seconds:.1f}s behind, over {self.max_lag_seconds:g}s: "
                "reads on the primary"
            )
        else:
            self._unusable = None
        return self._unusable

    def unreachable(self, error: str) -> None:
        self._label = "replica_down"
        self.lag_seconds = None
        self._unusable = f"replica down: {error}"

    def wrote(self, reader: str, position: int) -> None:
        """`reader` committed a write at WAL `position`: they read the primary until the replica
        has replayed it."""
        if position <= self.replayed:
            return
        marks = self._marks
        if position > marks.get(reader, -1):
            marks[reader] = position
        marks.move_to_end(reader)
        while len(marks) > self._max_marks:
            marks.popitem(last=False)

    def pending(self) -> int:
        """How many readers have a write the replica has not replayed yet."""
        return len(self._marks)

    def _forget_replayed(self) -> None:
        replayed = self.replayed
        passed = [reader for reader, mark in self._marks.items() if mark <= replayed]
        for reader in passed:
            del self._marks[reader]


def replica_probe(routing: ReadRouting, read_url: str, primary_url: str, timeout: float) -> Probe:
    """The replica's replay position and lag, on fresh connections (a stale pool never hides a
    recovery, a busy one never delays the probe). The lag is 0 when the replica has replayed
    everything the primary had written just before, else the age of the last commit it
    replayed. Never required: reads fall back to the primary.
    """

    async def check() -> str | None:
        # Without the primary's position there is no lag to measure: the probe fails, and the
        # routing keeps its last state (with the primary down, no read runs anyway).
        async with await _connect(primary_url, timeout) as primary:
            cur = await primary.execute(q.WRITTEN_POSITION.sql)
            written = (await cur.fetchone() or [0])[0]
        try:
            async with await _connect(read_url, timeout) as replica:
                cur = await replica.execute(q.REPLAY_STATE.sql)
                row = await cur.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            routing.unreachable(type(exc).__name__)
            raise
        except anyio.get_cancelled_exc_class():
            routing.unreachable("no answer in time")
            raise
        assert row is not None
        _standby, replayed, age = row
        lag = 0.0 if replayed is not None and replayed >= written else age
        return routing.probed(replayed, None if lag is None else max(0.0, float(lag)))

    async def on_recovery() -> None:
        await routing.pool.check()

    return Probe("postgres_replica", check, required=False, on_recovery=on_recovery)


async def _connect(url: str, connect_seconds: float) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=max(1, int(connect_seconds))
    )


def observe_reads(meter: Meter, routing: ReadRouting) -> None:
    """`sevenp.db.reads`: reads routed, by `db.read.server` and, to the primary, `db.read.reason`;
    `sevenp.db.replica.lag`: the replica's lag at its last probe."""

    def reads(_: CallbackOptions) -> Iterable[Observation]:
        for (server, reason), count in list(routing.reads.items()):
            attributes = {"db.read.server": server}
            if reason:
                attributes["db.read.reason"] = reason
            yield Observation(count, attributes)

    def lag(_: CallbackOptions) -> Iterable[Observation]:
        if routing.lag_seconds is not None:
            yield Observation(routing.lag_seconds)

    meter.create_observable_counter("sevenp.db.reads", [reads], unit="{read}")
    meter.create_observable_gauge("sevenp.db.replica.lag", [lag], unit="s")
