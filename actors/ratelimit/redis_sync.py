"""Redis side of rate limiting: the batched cluster budget and the strict atomic limiter.

Both keep GCRA TATs in microseconds on the clock of the script (Redis TIME unless a test clock
is injected). The strict limiter keeps one per `{prefix}rl:{policy}:{key}`, with PEXPIRE = the
remaining backlog, so a key lives exactly as long as its bucket is not full. The budget keeps a
policy's busy keys in one sorted set, `{prefix}rl-budget:{policy}`, scored by TAT: a flush reads
and writes a batch of keys with one command each, drops the full buckets with one range removal,
and the set expires with its last TAT. ZMSCORE needs Redis 6.2; the script takes the set's name
as an argument, so it assumes a standalone Redis (not Cluster).

GlobalBudgetSync (non-strict policies). Decisions stay local (GcraStore); each instance records
the units it admits and flushes them every F seconds in one round trip. The script charges them
to the cluster TAT G = max(G, now) + units * I and returns G - now for each key that was busy
(G > now before the charge; an idle key's units are the instance's own, already in its local
TAT, so nothing is returned for it); the instance merges that backlog into its local TAT with
max (GcraStore.merge_remote), so it counts every unit the cluster has seen exactly once,
whichever instance admitted it.

Over-admission bound. N instances; I = window / limit; F = longest gap between an instance's
flush starts; d = longest flush round trip; Λ = 2 (F + d), the time within which a unit admitted
anywhere reaches Redis (F + d) and then the local view of any instance admitting the key
(another F + d: its own next flush with a unit of the key brings the backlog back). In every
time interval of length L the cluster admits at most

    limit + L / I + E,    E = (N - 1) * (limit + Λ / I)

units: what one exact GCRA allows, plus for each other instance what it can admit on its own
in Λ. Derivation:
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
from collections.abc import Callable

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from actors.ratelimit.gcra import Decision, decision_from_backlog, interval_ticks
from actors.ratelimit.policy import RatePolicy

US_PER_SECOND = 1_000_000
MAX_BATCH_SIZE = 3_000
"""Keys per flush script: a ZADD unpacks two arguments per key, and Lua's stack takes 8,000."""

Backlogs = dict[str, dict[str, float]]
"""Per policy name, per key: the cluster backlog in units."""
_Group = tuple[RatePolicy, list[tuple[str, int]]]
"""One policy's keys in a flush script, with the units each charges."""

_FLUSH = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local out = {}
for g = 2, #ARGV, 4 do
  local budget, interval = ARGV[g], tonumber(ARGV[g + 1])
  local keys, units = {}, {}
  for key in string.gmatch(ARGV[g + 2], '([^\\n]*)\\n') do
    keys[#keys + 1] = key
  end
  for count in string.gmatch(ARGV[g + 3], '%d+') do
    units[#units + 1] = tonumber(count)
  end
  redis.call('ZREMRANGEBYSCORE', budget, '-inf', now)
  local tats = redis.call('ZMSCORE', budget, unpack(keys))
  local scored, busy = {}, {}
  for i = 1, #keys do
    local tat = tats[i]
    local charge = units[i] * interval
    if tat then
      tat = tonumber(tat) + charge
      busy[#busy + 1] = i - 1
      busy[#busy + 1] = tat - now
    else
      tat = now + charge
    end
    scored[2 * i - 1] = string.format('%d', tat)
    scored[2 * i] = keys[i]
  end
  redis.call('ZADD', budget, unpack(scored))
  local last = redis.call('ZRANGE', budget, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', budget, math.max(1, math.ceil((tonumber(last[2]) - now) / 1000)))
  out[#out + 1] = busy
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


class GlobalBudgetSync:
    """Batches locally admitted units and exchanges them for the cluster backlog in Redis."""

    def __init__(
        self,
        *,
        prefix: str = "",
        batch_size: int = 500,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` replaces Redis TIME (tests, simulations), and every instance must share it."""
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH_SIZE}: {batch_size}")
        self._prefix = prefix
        self._batch_size = batch_size
        self._clock = clock
        self._policies: dict[str, RatePolicy] = {}
        self._units: dict[str, dict[str, int]] = {}
        """Per policy name, per key: net units recorded since the last flush."""

    def __len__(self) -> int:
        """Units the next flush would send (keys with net units > 0)."""
        return sum(
            units for by_key in self._units.values() for units in by_key.values() if units > 0
        )

    def record(self, policy: RatePolicy, key: str, units: int = 1) -> None:
        """Add units admitted (or, negative, refunded) locally since the last flush. No I/O.

        Keys travel to Redis newline-terminated, so a key must not contain a newline (addresses
        and user ids never do)."""
        by_key = self._units.get(policy.name)
        if by_key is None:
            self._policies[policy.name] = policy
            by_key = self._units[policy.name] = {}
        by_key[key] = by_key.get(key, 0) + units

    async def flush(self, client: Redis) -> Backlogs | None:
        """Charge the units recorded since the last flush to Redis in one round trip; return
        each busy key's cluster backlog, or None when there was nothing to send (and so no round
        trip).

        The backlog of a key is the cluster's plus this instance's units recorded while the
        flush was in flight, to feed to GcraStore.merge_remote right away. Keys whose net units
        are <= 0 are not sent. A key that was idle in the cluster until this flush is left out:
        its backlog is this instance's own units, which its store already holds (counted from
        when they were admitted, not from the flush, so merging would only overstate it).
        On error the batch is dropped and the error propagates.
        """
        taken, self._units = self._units, {}
        scripts: list[list[_Group]] = []
        room = 0
        for name, by_key in taken.items():
            charged = [(key, units) for key, units in by_key.items() if units > 0]
            while charged:
                if room == 0:
                    scripts.append([])
                    room = self._batch_size
                scripts[-1].append((self._policies[name], charged[:room]))
                charged = charged[room:]
                room -= len(scripts[-1][-1][1])
        if not scripts:
            return None
        try:
            replies = await self._charge(client, scripts)
        except NoScriptError:
            await client.script_load(_FLUSH)
            replies = await self._charge(client, scripts)
        backlogs: Backlogs = {}
        for script, script_replies in zip(scripts, replies, strict=True):
            for (policy, charged), busy in zip(script, script_replies, strict=True):
                if not busy:
                    continue
                interval = interval_ticks(policy, US_PER_SECOND)
                in_flight = self._units.get(policy.name, {})
                found = backlogs.setdefault(policy.name, {})
                for position, lead in zip(busy[::2], busy[1::2], strict=True):
                    key = charged[position][0]
                    found[key] = lead / interval + in_flight.get(key, 0)
        return backlogs

    async def _charge(self, client: Redis, scripts: list[list[_Group]]) -> list[list[list[int]]]:
        """One pipeline of flush scripts; per script, per group, flat (position, backlog in
        microseconds) pairs of the group's keys that were busy in the cluster. A script's
        arguments are the clock, then per group: the budget set, the emission interval in
        microseconds, the keys newline-terminated and the units of each, comma-separated."""
        now = "" if self._clock is None else str(round(self._clock() * US_PER_SECOND))
        async with client.pipeline(transaction=False) as pipe:
            for script in scripts:
                args: list[str | int] = [now]
                for policy, charged in script:
                    keys, units = zip(*charged, strict=True)
                    args += (
                        budget_key(self._prefix, policy),
                        interval_ticks(policy, US_PER_SECOND),
                        "\n".join(keys) + "\n",
                        ",".join(map(str, units)),
                    )
                pipe.evalsha(_FLUSH_SHA, 0, *args)
            replies: list[list[list[int]]] = await pipe.execute()
        return replies


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
