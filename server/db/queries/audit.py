"""Statements over `audit_log`: append one row in the caller's transaction, append a batch
(the audit actor), read a filtered page, and keep the monthly partitions."""

from __future__ import annotations

from server.db.statement import Statement

RECORD = Statement(
    "audit.record",
    "INSERT INTO audit_log"
    " (actor_id, action, target_type, target_id, client_address, outcome, details)"
    " VALUES (%(actor_id)s, %(action)s, %(target_type)s, %(target_id)s, %(address)s,"
    "   %(outcome)s, %(details)s::jsonb)",
    prepare=True,
)

RECORD_BATCH = Statement(
    "audit.record_batch",
    "INSERT INTO audit_log (occurred_at, actor_id, action, target_type, target_id,"
    " client_address, outcome, details)"
    " SELECT occurred_at, actor_id, action, target_type, target_id, address, outcome,"
    "   details::jsonb"
    " FROM unnest(%(occurred_at)s::timestamptz[], %(actor_id)s::uuid[], %(action)s::text[],"
    "   %(target_type)s::text[], %(target_id)s::text[], %(address)s::text[],"
    "   %(outcome)s::text[], %(details)s::text[])"
    "   AS r(occurred_at, actor_id, action, target_type, target_id, address, outcome, details)",
)

_FILTER = (
    " WHERE (%(actor_id)s::uuid IS NULL OR actor_id = %(actor_id)s)"
    " AND (%(action)s::text IS NULL OR action = %(action)s)"
    " AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)"
)

PAGE = Statement(
    "audit.page",
    "SELECT id, occurred_at, actor_id::text AS actor_id, action, target_type, target_id,"
    " client_address, outcome, details FROM audit_log"
    + _FILTER
    + " ORDER BY occurred_at DESC, id DESC"
    " LIMIT %(limit)s OFFSET %(offset)s",
)

COUNT = Statement("audit.count", "SELECT count(*) FROM audit_log" + _FILTER)

MAINTAIN = Statement(
    "audit.maintain",
    "SELECT audit_log_maintain(%(months_ahead)s,"
    " now() - make_interval(days => %(retention_days)s))",
)
