"""What services need from the actors, as small Protocols; the runtime wires the actors in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol


class RevocationAnnouncer(Protocol):
    """Applies a committed revocation on this instance and tells the others."""

    async def session_revoked(self, *, session_id: str, user_id: str) -> None: ...

    async def user_sessions_revoked(
        self, *, user_id: str, valid_after: float, session_ids: list[str]
    ) -> None: ...


class MailWaker(Protocol):
    """Wakes the mail sender after a mail was queued in the outbox."""

    def poke(self) -> None: ...


class Cache(Protocol):
    """Encoded response bodies cached under tags; `invalidate` after commit on every write."""

    async def get_or_load(
        self,
        key: str,
        tags: Sequence[str],
        load: Callable[[], Awaitable[bytes]],
        ttl: float | None = None,
    ) -> bytes: ...

    async def invalidate(self, tags: Iterable[str]) -> None: ...
