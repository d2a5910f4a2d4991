-- Retry-safe writes (Idempotency-Key): one row per caller and key, kept 24 h.
-- `id` is a hash of the caller's scope and the key, so the table never holds a client's key;
-- `response` is sealed with a key derived from the client's key (see services/idempotency.py).
-- While `status` is NULL the request is in flight, held until `lease_until`.
CREATE TABLE idempotency_keys (
    id          bytea PRIMARY KEY,
    fingerprint bytea NOT NULL,
    token       uuid NOT NULL,
    lease_until timestamptz NOT NULL,
    status      smallint CHECK (status BETWEEN 200 AND 299),
    response    bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK ((status IS NULL) = (response IS NULL))
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
