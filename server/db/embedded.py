"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is given."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("sevenp.embedded")
logging.getLogger("pgserver").setLevel(logging.WARNING)


def start_embedded_postgres(data_dir: str) -> str:
    """Start (or reuse) a PostgreSQL kept under `data_dir`/postgres; return its URL.

    The server stops when the process that started it exits.
    """
    from pgserver.postgres_server import get_server

    path = Path(data_dir).resolve() / "postgres"
    path.mkdir(parents=True, exist_ok=True)
    server = get_server(path, cleanup_mode="stop")
    url: str = server.get_uri("postgres")
    logger.info("embedded PostgreSQL under %s", path)
    return url
