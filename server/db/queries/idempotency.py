"""Statements of retry-safe writes: claim a key, read it, store the response, release, purge."""

from __future__ import annotations

from server.db.statement import Statement

CLAIM = Statement(
    "idempotency.claim",
    "INSERT INTO idempotency_keys AS k (id, fingerprint, token, lease_until, expires_at)"
    " VALUES (%(id)s, %(fingerprint)s, %(token)s, now() + %(lease)s * interval '1 second',"
    "   now() + %(ttl)s * interval '1 second')"
    " ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token,"
    "   lease_until = excluded.lease_until, expires_at = excluded.expires_at, created_at = now()"
    " WHERE k.expires_at <= now() OR (k.status IS NULL AND k.lease_until <= now())"
    " RETURNING token",
    prepare=True,
)

GET = Statement(
    "idempotency.get",
    "SELECT fingerprint, status, response FROM idempotency_keys"
    " WHERE id = %(id)s AND expires_at > now()",
    prepare=True,
)

COMPLETE = Statement(
    "idempotency.complete",
    "UPDATE idempotency_keys SET status = %(status)s, response = %(response)s"
    " WHERE id = %(id)s AND token = %(token)s AND status IS NULL",
    prepare=True,
)

RELEASE = Statement(
    "idempotency.release",
    "DELETE FROM idempotency_keys WHERE id = %(id)s AND token = %(token)s AND status IS NULL",
)
