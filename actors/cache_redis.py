"""The cache's Redis tier: tagged entries and tag versions, each operation one atomic script.

Keys, under `{prefix}cache:`: `e:{key}` an entry (msgpack: its tags, their versions when it
was loaded, its expiry in unix seconds, the body), with a TTL; `t:{tag}` a tag's version.

Versions only move up. A missing tag key is created at Redis's clock in microseconds (far
above any count of invalidations it could have had before), so a tag whose key expired or
was lost with the database never comes back at a version an old entry was stored under.
Tag keys outlive the entries stored under them by `TAG_MARGIN_SECONDS`.

- `read`: the versions of the entry's tags now and, unless they equal the versions the
  caller already holds a body for, the entry itself;
- `store`: writes the entry only if its tags still have the versions read before loading
  (a body loaded across an invalidation could never match, and would replace one that does);
- `bump`: raises each tag's version and returns the new ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis

TAG_MARGIN_SECONDS = 3600.0

_STAMP = """
local function stamp()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end
"""

# KEYS: entry, tags...; ARGV: tag TTL ms, then the versions the caller holds (or nothing)
_READ = (
    _STAMP
    + """
local versions = {}
local now = nil
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    now = now or stamp()
    redis.call('SET', KEYS[i], now, 'PX', ARGV[1])
    v = now
  end
  versions[i - 1] = v
end
local same = #ARGV - 1 == #versions
if same then
  for i = 1, #versions do
    if versions[i] ~= ARGV[i + 1] then same = false break end
  end
end
local entry = false
if not same then entry = redis.call('GET', KEYS[1]) end
return {entry, versions}
"""
)

# KEYS: entry, tags...; ARGV: value, TTL ms, tag TTL ms, the versions read before loading
_STORE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[i + 2] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local keep = tonumber(ARGV[3])
for i = 2, #KEYS do
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
end
return 1
"""

# KEYS: tags; ARGV: tag TTL ms
_BUMP = (
    _STAMP
    + """
local versions = {}
local keep = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCR', KEYS[i])
  else
    redis.call('SET', KEYS[i], stamp())
  end
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
  versions[i] = redis.call('GET', KEYS[i])
end
return versions
"""
)


class Stored(msgspec.Struct, array_like=True, frozen=True):
    tags: tuple[str, ...]
    versions: tuple[int, ...]
    expires_at: float
    body: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Stored)


class RedisTier:
    def __init__(self, redis: aioredis.Redis, *, prefix: str, tag_ttl_seconds: float) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cache:"
        self._tag_ttl_ms = _ms(tag_ttl_seconds)
        self._read = redis.register_script(_READ)
        self._store = redis.register_script(_STORE)
        self._bump = redis.register_script(_BUMP)

    async def read(
        self, key: str, tags: Sequence[str], known: Sequence[int] | None
    ) -> tuple[tuple[int, ...], Stored | None]:
        """Current versions of `tags`, and the entry unless they equal `known`."""
        args: list[str | int] = [self._tag_ttl_ms, *(str(v) for v in known or ())]
        raw, versions = await self._read(keys=self._keys(key, tags), args=args)
        current = tuple(int(v) for v in versions)
        if raw is None:
            return current, None
        try:
            return current, _decoder.decode(raw)
        except msgspec.DecodeError:
            return current, None

    async def store(
        self,
        key: str,
        tags: Sequence[str],
        versions: Sequence[int],
        body: bytes,
        ttl_seconds: float,
    ) -> bool:
        """Write the entry if `tags` still have `versions`; False if one moved on."""
        value = _encoder.encode(
            Stored(tuple(tags), tuple(versions), time.time() + ttl_seconds, body)
        )
        args: list[bytes | str | int] = [
            value,
            _ms(ttl_seconds),
            _ms(ttl_seconds + TAG_MARGIN_SECONDS),
            *(str(v) for v in versions),
        ]
        written = await self._store(keys=self._keys(key, tags), args=args)
        return bool(written)

    async def bump(self, tags: Sequence[str]) -> tuple[int, ...]:
        """Raise each tag's version; the new versions, in order."""
        keys = [self._tag_key(tag) for tag in tags]
        versions = await self._bump(keys=keys, args=[self._tag_ttl_ms])
        return tuple(int(v) for v in versions)

    async def ping(self) -> None:
        await self._redis.ping()

    def _keys(self, key: str, tags: Sequence[str]) -> list[str]:
        return [f"{self._prefix}e:{key}", *(self._tag_key(tag) for tag in tags)]

    def _tag_key(self, tag: str) -> str:
        return f"{self._prefix}t:{tag}"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
