"""No raw reset or verification token is left in any table once its mail was delivered."""

from __future__ import annotations

import email
import email.message
import re
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from tests.support.accounts import register
from tests.support.waiting import eventually

_TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})$", re.MULTILINE)


def _mailed_tokens(mail_dir: Path, recipient: str) -> list[str]:
    tokens: list[str] = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] != recipient:
            continue
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        tokens += _TOKEN_LINE.findall(payload.decode())
    return tokens


async def _unsent(conn: psycopg.AsyncConnection, recipient: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM mail_outbox WHERE recipient = %s AND sent_at IS NULL", (recipient,)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _places_holding(conn: psycopg.AsyncConnection, secret: str) -> list[str]:
    """Every `table.column` of the public schema whose value contains `secret`, in any type."""
    cur = await conn.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
    )
    found: list[str] = []
    for table, column, data_type in await cur.fetchall():
        value = sql.Identifier(column)
        condition = (
            sql.SQL("position(convert_to(%(s)s, 'UTF8') IN {}) > 0").format(value)
            if data_type == "bytea"
            else sql.SQL("strpos({}::text, %(s)s) > 0").format(value)
        )
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
            sql.Identifier(table), condition
        )
        hit = await (await conn.execute(query, {"s": secret})).fetchone()
        if hit is not None and hit[0]:
            found.append(f"{table}.{column}")
    return found


async def test_no_mailed_token_is_left_in_any_table(
    http: httpx.AsyncClient, mail_dir: Path, database_url: str
) -> None:
    account = await register(http)
    forgot = await http.post("/api/auth/forgot-password", json={"email": account.email})
    assert forgot.status_code == 202
    resend = await http.post("/api/auth/resend-verification", headers=account.auth)
    assert resend.status_code == 202

    await eventually(lambda: len(_mailed_tokens(mail_dir, account.email)) == 3, within=15, poll=0.1)
    tokens = _mailed_tokens(mail_dir, account.email)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await eventually(lambda: _unsent_is_zero(conn, account.email), within=15, poll=0.1)
        for token in tokens:
            assert await _places_holding(conn, token) == [], "a raw token is stored"


async def _unsent_is_zero(conn: psycopg.AsyncConnection, recipient: str) -> bool:
    return await _unsent(conn, recipient) == 0
