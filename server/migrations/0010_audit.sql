-- The audit log: append-only, one partition per calendar month (UTC).
--
-- Partitions are made ahead by audit_log_maintain(), which the retention actor runs on
-- every instance every 5 minutes (and this migration once): the current month and the next
-- two. It also drops whole partitions whose month ended before the retention horizon.
-- audit_log_default catches a row whose month has no partition yet (maintenance stopped
-- for months), so an audited write never fails for want of one; retention never drops it.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    actor_id       uuid,
    action         text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type    text,
    target_id      text,
    client_address text,
    outcome        text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    details        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, occurred_at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, occurred_at DESC);
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Partitions are named audit_log_YYYY_MM; the name is what retention reads the month from.
CREATE FUNCTION audit_log_maintain(months_ahead integer, keep_after timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    first_month timestamp;
    part record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7700770010);
    FOR i IN 0 .. months_ahead LOOP
        first_month := month_start + make_interval(months => i);
        CONTINUE WHEN to_regclass('audit_log_' || to_char(first_month, 'YYYY_MM')) IS NOT NULL;
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
            'audit_log_' || to_char(first_month, 'YYYY_MM'),
            first_month AT TIME ZONE 'UTC',
            (first_month + interval '1 month') AT TIME ZONE 'UTC');
    END LOOP;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_\d{4}_\d{2}$'
    LOOP
        IF (to_date(substr(part.relname, 11), 'YYYY_MM')::timestamp + interval '1 month')
                AT TIME ZONE 'UTC' <= keep_after THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;

SELECT audit_log_maintain(2, '-infinity');
