"""Redis side of rate limiting: the batched cluster budget and the strict atomic limiter.

Both keep, per `{prefix}rl:{policy}:{key}`, one GCRA TAT in microseconds on the clock of the
script (Redis TIME unless a test clock is injected), with PEXPIRE = the remaining backlog, so a
key lives exactly as long as its bucket is not full (at most a window, plus any over-admission
debt below). Multi-key scripts assume a standalone Redis (not Cluster).

GlobalBudgetSync (non-strict policies). Decisions stay local (GcraStore); each instance records
the units it admits and flushes them every F seconds in one round trip. The script charges them
to the cluster TAT G = max(G, now) + units * I and returns G - now; the instance merges that
backlog into its local TAT with max (GcraStore.merge_remote), so it counts every unit the
cluster has seen exactly once, whichever instance admitted it.

Over-admission bound. N instances; I = window / limit; F = longest gap between an instance's
flush starts; d = longest flush round trip; Λ = 2 (F + d), the time within which a unit admitted
anywhere reaches Redis (F + d) and then the local view of any instance admitting the key
(another F + d). In every time interval of length L the cluster admits at most

    limit + L / I + E,    E = (N - 1) * (limit + Λ / I)

units: what one exact GCRA allows, plus for each other instance what it can admit on its own in Λ.
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
cluster-wide. Redis >= 5 is required (TIME before writes needs effect replication, default since).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from actors.ratelimit.gcra import Decision, decision_from_backlog, interval_ticks
from actors.ratelimit.policy import RatePolicy

US_PER_SECOND = 1_000_000

_FLUSH = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local out = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[i + 1])
  redis.call('SET', key, string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  out[i] = tat - now
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
    """The Redis key holding the cluster TAT of `key` under `policy`."""
    return f"{prefix}rl:{policy.name}:{key}"


class GlobalBudgetSync:
    """Batches locally admitted units and exchanges them for the cluster backlog in Redis."""

    def __init__(
        self,
        *,
        prefix: str = "",
        batch_size: int = 500,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` replaces Redis TIME (tests, simulations); every instance must share it."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1: {batch_size}")
        self._prefix = prefix
        self._batch_size = batch_size
        self._clock = clock
        self._pending: dict[tuple[str, str], float] = {}
        self._policies: dict[str, RatePolicy] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def record(self, policy: RatePolicy, key: str, units: float = 1.0) -> None:
        """Add units admitted (or, negative, refunded) locally since the last flush. No I/O."""
        if self._policies.get(policy.name) is not policy:
            self._policies[policy.name] = policy
        pending_key = (policy.name, key)
        self._pending[pending_key] = self._pending.get(pending_key, 0.0) + units

    async def flush(self, client: Redis) -> dict[tuple[str, str], float]:
        """Charge pending units to Redis in one round trip; return each key's cluster backlog.

        The result maps (policy name, key) to the backlog in units -- the cluster's plus this
        instance's units recorded while the flush was in flight -- to feed to
        GcraStore.merge_remote right away. Keys whose net pending units are <= 0 are skipped.
        On error the batch is dropped and the error propagates.
        """
        batch = [(k, units) for k, units in self._pending.items() if units > 0]
        self._pending = {}
        if not batch:
            return {}
        now_arg = "" if self._clock is None else str(round(self._clock() * US_PER_SECOND))
        names = {name for (name, _), _ in batch}
        intervals = {name: interval_ticks(self._policies[name], US_PER_SECOND) for name in names}
        try:
            replies = await self._charge(client, batch, intervals, now_arg)
        except NoScriptError:
            await client.script_load(_FLUSH)
            replies = await self._charge(client, batch, intervals, now_arg)
        backlogs: dict[tuple[str, str], float] = {}
        for (pending_key, _), lead in zip(batch, replies, strict=True):
            own = self._pending.get(pending_key, 0.0)
            backlogs[pending_key] = int(lead) / intervals[pending_key[0]] + own
        return backlogs

    async def _charge(
        self,
        client: Redis,
        batch: list[tuple[tuple[str, str], float]],
        intervals: dict[str, int],
        now_arg: str,
    ) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for start in range(0, len(batch), self._batch_size):
                chunk = batch[start : start + self._batch_size]
                keys = [redis_key(self._prefix, self._policies[n], k) for (n, k), _ in chunk]
                charges = [round(units * intervals[n]) for (n, _), units in chunk]
                pipe.evalsha(_FLUSH_SHA, len(keys), *keys, now_arg, *charges)
            results = await pipe.execute()
        return [lead for chunk_result in results for lead in chunk_result]


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
