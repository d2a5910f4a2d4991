"""Finds the PostgreSQL to benchmark against and gives the run its own database in it.

Order: ``--database-url``, then ``DATABASE_URL``, then an embedded pgserver under a temp dir.
The run then creates a fresh database (default ``sevenp_bench``) so seeded users never land in a
development database; if that is not permitted, the given database is used as is.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@contextlib.contextmanager
def base_dsn(explicit: str | None) -> Iterator[tuple[str, str]]:
    """Yield (dsn, source); an embedded server is stopped and deleted afterwards."""
    if explicit:
        yield explicit, "--database-url"
        return
    env = os.environ.get("DATABASE_URL")
    if env:
        yield env, "DATABASE_URL"
        return
    from pgserver.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="sevenp-bench-pg-") as tmp:
        server = get_server(tmp, cleanup_mode="delete")
        try:
            yield server.get_uri(), "embedded pgserver"
        finally:
            server.cleanup()


def with_database(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at database ``dbname``; URLs stay URLs (servers often expect one)."""
    if dsn.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + dbname))
    return make_conninfo(dsn, dbname=dbname)


@contextlib.contextmanager
def bench_database(dsn: str, name: str, *, keep: bool = False) -> Iterator[tuple[str, str]]:
    """Yield (dsn of a fresh database ``name``, note); drop it afterwards unless ``keep``."""
    current = conninfo_to_dict(dsn).get("dbname")
    if current == name:
        yield dsn, f"using database {name} as given"
        return
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        yield (
            dsn,
            f"could not create database {name} ({exc.__class__.__name__}); using the given one",
        )
        return
    try:
        yield with_database(dsn, name), f"fresh database {name}"
    finally:
        if not keep:
            with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def redact(dsn: str) -> str:
    """The DSN without its password, for reports."""
    params = conninfo_to_dict(dsn)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)
