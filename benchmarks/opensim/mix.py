"""Request mixes as data: weighted entries a session draws from, and the session's credentials.

An entry is ``(weight, method, path, body)``; ``kind="refresh"`` entries post the session's current
refresh token and adopt the rotated pair from the response. Placeholders in a path are filled per
request from the session (``fill_path``): ``{user_id}`` from its credentials, any other
``{name}`` from its queue of that name (taken in order, the last value kept once the rest are
used) or else its pool of that name (drawn at random), so route families with per-session paths
(a student's courses, the next lesson to complete) are added as data.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Literal

import msgspec

EntryKind = Literal["request", "refresh"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class MixEntry:
    """One weighted kind of request in a session's mix."""

    weight: float
    method: str
    path: str
    body: object | None = None
    kind: EntryKind = "request"
    name: str | None = None
    auth: bool = True

    @property
    def placeholders(self) -> frozenset[str]:
        """Names of the ``{name}`` placeholders of the path."""
        return frozenset(_PLACEHOLDER.findall(self.path))

    @property
    def label(self) -> str:
        """Name used in per-entry statistics."""
        return self.name or f"{self.method} {self.path}"

    def encoded_body(self) -> bytes | None:
        """The fixed JSON body, encoded once."""
        return None if self.body is None else msgspec.json.encode(self.body)


def refresh_entry(weight: float, path: str = "/api/auth/refresh") -> MixEntry:
    """POST ``{"refreshToken": <current>}``; the response's access/refresh tokens rotate."""
    return MixEntry(weight, "POST", path, kind="refresh", name="refresh", auth=False)


@dataclass
class SessionCredentials:
    """Tokens a virtual session carries; refresh entries replace them in place."""

    access_token: str | None = None
    refresh_token: str | None = None
    user_id: str | None = None
    pools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    queues: dict[str, list[str]] = field(default_factory=dict)

    def provides(self) -> frozenset[str]:
        """Placeholder names this session can fill."""
        return frozenset({"user_id", *self.pools, *(k for k, v in self.queues.items() if v)})


def fill_path(path: str, creds: SessionCredentials, rng: random.Random) -> str:
    """``path`` with its placeholders filled from ``creds`` (see the module's docstring)."""
    if "{" not in path:
        return path

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "user_id":
            return creds.user_id or ""
        queue = creds.queues.get(name)
        if queue:
            return queue.pop(0) if len(queue) > 1 else queue[0]
        pool = creds.pools.get(name)
        if pool:
            return pool[int(rng.random() * len(pool))]
        raise KeyError(f"the session has no value for {{{name}}}")

    return _PLACEHOLDER.sub(value, path)


class MixPicker:
    """Draws entries in proportion to their weights from a uniform number in [0, 1)."""

    def __init__(self, entries: tuple[MixEntry, ...] | list[MixEntry]) -> None:
        if not entries:
            raise ValueError("a mix needs at least one entry")
        if any(e.weight <= 0 for e in entries):
            raise ValueError("mix weights must be positive")
        self.entries = tuple(entries)
        total = sum(e.weight for e in entries)
        self._edges = [c / total for c in itertools.accumulate(e.weight for e in entries)]

    def pick(self, u: float) -> int:
        """Index of the entry drawn by ``u`` in [0, 1)."""
        return min(bisect.bisect_right(self._edges, u), len(self._edges) - 1)

    @property
    def needs_refresh_tokens(self) -> bool:
        return any(e.kind == "refresh" for e in self.entries)


def parse_rotated_tokens(body: bytes) -> tuple[str, str] | None:
    """``(accessToken, refreshToken)`` from a refresh response, or None if absent."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(data, dict):
        return None
    access, refresh = data.get("accessToken"), data.get("refreshToken")
    if isinstance(access, str) and isinstance(refresh, str):
        return access, refresh
    return None
