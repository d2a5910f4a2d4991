"""What services need from the actors, as small Protocols; the runtime wires the actors in."""

from __future__ import annotations

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
