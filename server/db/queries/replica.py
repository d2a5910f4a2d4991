"""Statements that place a primary's commits and a replica's replay on one axis: WAL positions
as byte offsets (`pg_lsn - '0/0'`), so they compare as integers in the process."""

from __future__ import annotations

from server.db.statement import Statement

WRITTEN_POSITION = Statement(
    "replica.written_position",
    "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
)
"""On the primary, after a commit: a position at or past that commit's WAL record."""

REPLAY_STATE = Statement(
    "replica.replay_state",
    "SELECT pg_is_in_recovery() AS standby,"
    " (COALESCE(pg_last_wal_replay_lsn(),"
    "   CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END)"
    "  - '0/0'::pg_lsn)::bigint AS replayed,"
    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age_seconds",
)
"""On the read server: how far it has replayed. A server that is no standby (a read URL that
names a primary) has "replayed" everything it has written."""
