"""Throwaway PostgreSQL schema for the DB ceilings: ``bench_ceiling(id, payload)`` with 10k rows."""

from __future__ import annotations

import psycopg
from psycopg import sql

from benchmarks.ceilings import DEFAULT_ROWS, TABLE


async def create_ceiling_schema(dsn: str, schema: str, rows: int = DEFAULT_ROWS) -> None:
    """(Re)create ``schema`` with the ceiling table filled with ``rows`` rows."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        table = sql.Identifier(schema, TABLE)
        await conn.execute(
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, payload text NOT NULL)").format(table)
        )
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, payload) "
                "SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, %s) AS g"
            ).format(table),
            (rows,),
        )
        await conn.execute(sql.SQL("ANALYZE {}").format(table))


async def drop_ceiling_schema(dsn: str, schema: str) -> None:
    """Drop the throwaway schema and everything in it."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
