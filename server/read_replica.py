"""The read replica's part of a worker's runtime: its pool and routing, and write marks shared
with the other instances over the bus (`server.db.replica` decides where reads go)."""

from __future__ import annotations

from actors.bus import SyncBus
from schemas.events import ReaderWrote
from server.db.pool import Pool, create_pool
from server.db.replica import ReadRouting
from server.settings import Settings


def read_routing(settings: Settings, primary: Pool) -> tuple[Pool | None, ReadRouting | None]:
    """The replica's pool and the routing over it; (None, None) without `DATABASE_READ_URL`."""
    if not settings.database_read_url:
        return None, None
    pool = create_pool(settings, settings.database_read_url, reads=True)
    return pool, ReadRouting(pool, max_lag_seconds=settings.database_read_max_lag_seconds)


def share_write_marks(routing: ReadRouting, bus: SyncBus, instance_id: str) -> None:
    """Announce this instance's writers' marks on the bus, and keep the other instances'."""

    async def announce(user_id: str, position: int) -> None:
        await bus.publish(ReaderWrote(user_id=user_id, position=position, origin=instance_id))

    def heard(event: ReaderWrote) -> None:
        routing.wrote(event.user_id, event.position)

    routing.announce = announce
    bus.subscribe(ReaderWrote, heard)
