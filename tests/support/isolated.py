"""A live server on a database of its own, for tests whose figures cover the whole database."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from server.db.migrate import apply_migrations
from tests.support.accounts import create_user_cli, unique_email
from tests.support.live_server import LiveServer
from tests.support.services import throwaway_database


@dataclass
class IsolatedServer:
    server: LiveServer
    database_url: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def create_user(self, role: str) -> str:
        """An account made with `sevenp create-user`; its email."""
        email = unique_email(role)
        result = create_user_cli({**os.environ, **self.server.env}, email=email, role=role)
        assert result.returncode == 0, result.stderr
        return email


@contextlib.contextmanager
def isolated_server(
    postgres_admin_url: str, redis_url: str, env: Mapping[str, str] | None = None
) -> Iterator[IsolatedServer]:
    with throwaway_database(postgres_admin_url) as url:
        asyncio.run(apply_migrations(url))
        server = LiveServer({"DATABASE_URL": url, "REDIS_URL": redis_url, **(env or {})}).start()
        try:
            yield IsolatedServer(server, url)
        finally:
            server.stop()
