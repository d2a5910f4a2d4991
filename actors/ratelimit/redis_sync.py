"""Redis side of rate limiting: the batched cluster budget and the strict atomic limiter.

Both keep GCRA TATs in microseconds on the clock of the script (Redis TIME unless a test clock
is injected). The strict limiter keeps one per `{prefix}rl:{policy}:{key}`, with PEXPIRE = the
remaining backlog, so a key lives exactly as long as its bucket is not full. The budget keeps a
policy's busy keys in one sorted set, `{prefix}rl-budget:{policy}`, scored by TAT: a flush
reads and writes all of its keys in one command each and drops the full buckets with one range
removal, where a GET and a SET with an expiry per key cost Redis half as much again (1.5-1.9
against 2.3-2.7 us per key in flushes of 800 keys); the set expires with its last TAT. The
flush script names its keys in packed arguments (the set, the keys newline-terminated -- one
argument for hundreds of keys -- and the microseconds each charges), so it assumes a standalone
Redis (not Cluster), version 6.2 or later (ZMSCORE). Keys are grouped by the units they charge,
so the script parses no count per key and writes one shared score for every key that was idle
in the cluster (nearly all of them, unless clients spread a burst over several instances): Lua
took 0.8 of the 1.9 us of Redis CPU per key, and the grouping saves 0.4 of it (500 idle keys
per flush).

GlobalBudgetSync (non-strict policies). Decisions stay local (GcraStore); each instance records
the units it admits and flushes them every F seconds in one round trip. The script charges them
to the cluster TAT G = max(G, now) + units * I and returns G - now for each key that was busy
(G > now before the charge; an idle key's units are the instance's own, already in its local
TAT, so nothing is returned for it); the instance merges that backlog into its local TAT with
max (GcraStore.merge_remote), so it counts every unit the cluster has seen exactly once,
whichever instance admitted it.

Quiet units. A unit admitted while its key's local bucket was full (GcraStore logs it as quiet)
comes from a key this instance sees idle: at most one per I per key. Most units of a service
with many clients are quiet, and reporting each at the next flush makes the sync cost one key
per request (Redis and the worker's flush together cost about as much as the decisions). So a
key's quiet units wait: the flush that first takes them holds them for `hold` more flushes, and
they reach Redis with whatever the key gathered meanwhile, Q = (hold + 1) F after admission at
most, Q <= min(quiet_seconds, window / 12) (`quiet_hold`). A key with a busy unit or a refund
in a flush is sent whole at once, its held units included, so a key anyone sees busy still
syncs every F, and an instance merging a key's backlog has sent all of its own units of it.

Over-admission bound. N instances; I = window / limit; F = longest gap between an instance's
flush starts; Q = the longest wait of a quiet unit, (hold + 1) F (Q = F without holding);
d = longest flush round trip; Λ = 2 (Q + d), the time within which a unit admitted anywhere
reaches Redis (Q + d) and then the local view of any instance admitting the key (another Q + d:
its own unit of the key reports it by then). In every time interval of length L the cluster
admits at most

    limit + L / I + E,    E = (N - 1) * (limit + Λ / I)

units: what one exact GCRA allows, plus for each other instance what it can admit on its own in Λ.
With quiet units held for the longest the cap allows (Q = window / 12), 2 Q / I = limit / 6: the
hold adds at most a sixth of the limit per other instance to E, against one full limit for the
burst any instance can admit before it hears of the others.
Derivation:
 1. An instance admits only while its local TAT <= now + window, and its local TAT is >= the TAT
    of every unit it has seen (merge by max); each unseen unit moves the true TAT by at most I.
 2. Unseen units come from the other N - 1 instances' last Λ, <= limit + Λ / I each (their own
    GCRA); an instance resuming after idling finds its old contribution drained exactly as much
    as its own view, so the true cluster TAT never exceeds now + window + E * I.
 3. The GCRA identity TAT(b) >= a + I * admitted(a, b] then gives admitted <= (L + window)/I + E.
A naive "add remote units but cap the TAT at now + window" forgets every overrun and lets N
saturated instances admit N times the rate, so the bound needs the debt to be kept (it is: the
backlog returned can exceed a window, and decays by itself). A failed flush drops its batch:
the bound then degrades by that batch, and no client is later charged for long-drained units.

StrictLimiter (strict policies, e.g. auth): the GCRA itself runs in Redis, one atomic script per
check or refund (one round trip), on Redis TIME so that every instance shares one clock; exact
cluster-wide (TIME before writes needs effect replication, the default since Redis 5).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable
from itertools import islice

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from actors.ratelimit.gcra import Decision, UnitLog, decision_from_backlog, interval_ticks
from actors.ratelimit.policy import RatePolicy

US_PER_SECOND = 1_000_000
MAX_BATCH_SIZE = 3_000
"""Keys per flush script: its ZADD unpacks two arguments per key, and Lua's stack takes 8,000."""

_FLUSH = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local out = {}
for g = 2, #ARGV, 3 do
  local budget = ARGV[g]
  local charge = tonumber(ARGV[g + 2])
  local keys, n = {}, 0
  for key in string.gmatch(ARGV[g + 1], '([^\\n]*)\\n') do
    n = n + 1
    keys[n] = key
  end
  redis.call('ZREMRANGEBYSCORE', budget, '-inf', now)
  local tats = redis.call('ZMSCORE', budget, unpack(keys))
  local idle = string.format('%d', now + charge)
  local scored, leads = {}, {}
  for i = 1, n do
    local tat = tats[i]
    if tat then
      tat = tonumber(tat) + charge
      leads[#leads + 1] = i .. ':' .. string.format('%d', tat - now)
      scored[2 * i - 1] = string.format('%d', tat)
    else
      scored[2 * i - 1] = idle
    end
    scored[2 * i] = keys[i]
  end
  redis.call('ZADD', budget, unpack(scored))
  local last = redis.call('ZRANGE', budget, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', budget, math.max(1, math.ceil((tonumber(last[2]) - now) / 1000)))
  out[#out + 1] = table.concat(leads, ',')
end
return out
"""
_FLUSH_SHA = hashlib.sha1(_FLUSH.encode(), usedforsecurity=False).hexdigest()

_STRICT_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local after = tat - now + interval * tonumber(ARGV[3])
if after > burst then return {0, tat - now} end
redis.call('SET', KEYS[1], string.format('%d', now + after), 'PX', math.ceil(after / 1000))
return {1, after}
"""

_STRICT_REFUND = """
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local left = tat - now - tonumber(ARGV[1]) * tonumber(ARGV[2])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', now + left), 'PX', math.ceil(left / 1000))
return left
"""


def redis_key(prefix: str, policy: RatePolicy, key: str) -> str:
    """The Redis key holding the TAT of `key` under a strict `policy`."""
    return f"{prefix}rl:{policy.name}:{key}"


def budget_key(prefix: str, policy: RatePolicy) -> str:
    """The sorted set of the cluster TATs (scores) of a general `policy`'s busy keys."""
    return f"{prefix}rl-budget:{policy.name}"


QUIET_WAIT_WINDOW_SHARE = 12
"""Quiet units wait at most 1/12 of their policy's window: at most limit/6 more units of
over-admission per other instance (2 Q / I with Q = window / 12)."""


def quiet_hold(policy: RatePolicy, flush_seconds: float, quiet_seconds: float) -> int:
    """Flushes a key's quiet units are held after the one that first takes them, so that
    they reach Redis within min(quiet_seconds, window / 12) of being admitted (flush gaps of
    `flush_seconds` assumed); 0 when that is less than two flush intervals."""
    wait = min(quiet_seconds, policy.window_seconds / QUIET_WAIT_WINDOW_SHARE)
    return max(0, math.floor(wait / flush_seconds + 1e-9) - 1)


class PendingUnits:
    """A policy's units on their way to Redis: the log its store writes, and the quiet units
    held back. A key's quiet units are held from the flush that first takes them for `hold`
    more flushes, then sent with whatever it gathered meanwhile; a key with busy units (or
    refunds) in a flush is sent whole at once, held units included."""

    __slots__ = ("due", "held", "hold", "log", "tick")

    def __init__(self, hold: int) -> None:
        self.log = UnitLog()
        self.hold = hold
        self.held: Counter[str] = Counter()
        self.due: list[list[str]] = [[] for _ in range(hold)]
        self.tick = 0

    def __len__(self) -> int:
        return len(self.log) + self.held.total()

    def take(self) -> Counter[str]:
        """The net units per key to send now, emptying the log into the held units."""
        log, held = self.log, self.held
        net = Counter(log.admitted)
        net.subtract(log.refunded)
        if not self.hold:
            net.update(log.quiet)
            log.clear()
            return net
        slot = self.tick % self.hold
        self.tick += 1
        releasing = self.due[slot]
        known = len(held)
        held.update(log.quiet)
        self.due[slot] = list(islice(reversed(held.keys()), len(held) - known))
        log.clear()
        sending = Counter({key: held.pop(key) for key in releasing if key in held})
        for key in net.keys() & held.keys():
            net[key] += held.pop(key)
        sending.update(net)
        return sending


class GlobalBudgetSync:
    """Batches locally admitted units and exchanges them for the cluster backlog in Redis."""

    def __init__(
        self,
        *,
        prefix: str = "",
        batch_size: int = 500,
        flush_seconds: float = 0.1,
        quiet_seconds: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`flush_seconds`: how often `flush` is called; quiet units may wait up to
        `quiet_seconds` (capped per policy, see `quiet_hold`); `clock` replaces Redis TIME
        (tests, simulations), and every instance must share it."""
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH_SIZE}: {batch_size}")
        if flush_seconds <= 0 or quiet_seconds < 0:
            raise ValueError(f"flush and quiet seconds: {flush_seconds}, {quiet_seconds}")
        self._prefix = prefix
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._quiet_seconds = quiet_seconds
        self._clock = clock
        self._pending: dict[str, PendingUnits] = {}
        self._policies: dict[str, RatePolicy] = {}

    def __len__(self) -> int:
        return sum(len(pending) for pending in self._pending.values())

    def has_units(self) -> bool:
        """Whether any unit waits to be sent: `len(self) > 0`, without counting them."""
        return any(pending.log or pending.held for pending in self._pending.values())

    def log_for(self, policy: RatePolicy) -> UnitLog:
        """The log where units admitted under `policy` accumulate until the next flush.

        The same log for the sync's lifetime: a GcraStore built with this callback logs its
        admissions and refunds straight into it.
        """
        self._policies[policy.name] = policy
        pending = self._pending.get(policy.name)
        if pending is None:
            hold = quiet_hold(policy, self._flush_seconds, self._quiet_seconds)
            pending = self._pending[policy.name] = PendingUnits(hold)
        return pending.log

    def record(self, policy: RatePolicy, key: str, units: int = 1) -> None:
        """Add units admitted (or, negative, refunded) locally since the last flush. No I/O.

        Keys travel to Redis newline-separated, so a key must not contain a newline (user ids
        and addresses never do)."""
        log = self.log_for(policy)
        if units >= 0:
            log.admitted.extend([key] * units)
        else:
            log.refunded.extend([key] * -units)

    async def flush(self, client: Redis) -> dict[str, dict[str, float]] | None:
        """Charge pending units to Redis in one round trip; return each key's cluster backlog.

        The result maps a policy name to each key's backlog in units -- the cluster's plus this
        instance's units recorded while the flush was in flight -- to feed to
        GcraStore.merge_remote right away. Quiet units are sent when their hold is over (or
        with their key's busy units); keys whose net units to send are <= 0 are skipped.
        A key that was idle in the cluster until this flush is not in the script's answer and is
        left out: its backlog is this instance's own units, which its store already holds
        (counted from when they were admitted, not from the flush, so merging would only
        overstate it). On a single instance, or for clients one instance serves, most keys are.
        None when there was nothing to send: no round trip was made.
        On error the batch is dropped and the error propagates.
        """
        batches: list[tuple[str, int, list[str]]] = []
        for name, pending in self._pending.items():
            net = pending.take()
            ones = [key for key, units in net.items() if units == 1]
            if ones:
                batches.append((name, 1, ones))
            if len(ones) < len(net):
                batches.extend(_by_units(name, net))
        if not batches:
            return None
        now_arg = "" if self._clock is None else str(round(self._clock() * US_PER_SECOND))
        try:
            replies = await self._charge(client, batches, now_arg)
        except NoScriptError:
            await client.script_load(_FLUSH)
            replies = await self._charge(client, batches, now_arg)
        backlogs: dict[str, dict[str, float]] = {}
        for (name, _, keys), leads in zip(batches, replies, strict=True):
            if not leads:
                continue
            interval = interval_ticks(self._policies[name], US_PER_SECOND)
            own = self._pending[name].log.tally()
            backlog = backlogs.setdefault(name, {})
            for position, lead in leads:
                backlog[keys[position]] = lead / interval + own[keys[position]]
        return backlogs

    async def _charge(
        self, client: Redis, batches: list[tuple[str, int, list[str]]], now_arg: str
    ) -> list[list[tuple[int, int]]]:
        """One pipeline of flush scripts of up to `batch_size` keys each; per batch (one policy's
        keys that each charge the same units), the position and cluster backlog in microseconds
        of each key that was not idle in the cluster. A script's arguments are the clock, then
        per group of a batch's keys: the budget set, the keys newline-terminated, and the
        microseconds each one charges; it answers per group `position:backlog` pairs,
        comma-separated, for those keys only."""
        size = self._batch_size
        groups = [
            (index, start, min(size, len(keys) - start))
            for index, (_, _, keys) in enumerate(batches)
            for start in range(0, len(keys), size)
        ]
        scripts: list[list[tuple[int, int]]] = [[]]
        filled = 0
        for index, start, count in groups:
            if scripts[-1] and filled + count > size:
                scripts.append([])
                filled = 0
            scripts[-1].append((index, start))
            filled += count
        async with client.pipeline(transaction=False) as pipe:
            for script in scripts:
                args: list[str | int] = [now_arg]
                for index, start in script:
                    name, units, keys = batches[index]
                    policy = self._policies[name]
                    args.append(budget_key(self._prefix, policy))
                    args.append("\n".join(keys[start : start + size]) + "\n")
                    args.append(units * interval_ticks(policy, US_PER_SECOND))
                pipe.evalsha(_FLUSH_SHA, 0, *args)
            results = await pipe.execute()
        leads: list[list[tuple[int, int]]] = [[] for _ in batches]
        for script, packed_groups in zip(scripts, results, strict=True):
            for (index, start), packed in zip(script, packed_groups, strict=True):
                if packed:
                    leads[index].extend(_positioned_leads(packed, start))
        return leads


def _by_units(name: str, net: Counter[str]) -> list[tuple[str, int, list[str]]]:
    """The batches of a policy's keys charging more than one unit, one per unit count."""
    by_units: dict[int, list[str]] = {}
    for key, units in net.items():
        if units > 1:
            by_units.setdefault(units, []).append(key)
    return [(name, units, keys) for units, keys in by_units.items()]


def _positioned_leads(packed: bytes, start: int) -> list[tuple[int, int]]:
    """`b"3:120,7:45"` from a group starting at `start` -> [(start + 2, 120), (start + 6, 45)]
    (the script counts from 1)."""
    leads = []
    for pair in packed.split(b","):
        position, _, lead = pair.partition(b":")
        leads.append((start + int(position) - 1, int(lead)))
    return leads


class StrictLimiter:
    """Exact cluster-wide GCRA: each check or refund is one atomic script in Redis."""

    def __init__(self, *, prefix: str = "") -> None:
        self._prefix = prefix
        self._check: AsyncScript | None = None
        self._refund: AsyncScript | None = None

    async def check(self, client: Redis, policy: RatePolicy, key: str, cost: int = 1) -> Decision:
        """Decide a request of `cost` units; consume them when allowed."""
        if not 1 <= cost <= policy.limit:
            raise ValueError(f"cost must be within 1..{policy.limit}: {cost}")
        if self._check is None:
            self._check = client.register_script(_STRICT_CHECK)
        interval = interval_ticks(policy, US_PER_SECOND)
        allowed, backlog = await self._check(
            keys=[redis_key(self._prefix, policy, key)],
            args=[interval, policy.limit, cost],
            client=client,
        )
        return decision_from_backlog(
            policy.limit, interval, int(backlog), bool(allowed), cost, US_PER_SECOND
        )

    async def refund(self, client: Redis, policy: RatePolicy, key: str, cost: int = 1) -> None:
        """Give back `cost` units (skip-successful requests); never beyond a full bucket."""
        if cost < 1:
            raise ValueError(f"cost must be >= 1: {cost}")
        if self._refund is None:
            self._refund = client.register_script(_STRICT_REFUND)
        await self._refund(
            keys=[redis_key(self._prefix, policy, key)],
            args=[interval_ticks(policy, US_PER_SECOND), cost],
            client=client,
        )
