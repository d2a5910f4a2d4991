-- A mail's one-time token lives apart from its body, only until the mail is sent or given up.
ALTER TABLE mail_outbox ADD COLUMN secret text;

-- Rows queued before: the token is the line of 43 URL-safe characters between blank lines.
UPDATE mail_outbox
SET secret = CASE WHEN sent_at IS NULL AND isfinite(next_attempt_at)
                  THEN substring(body FROM E'\n\n([A-Za-z0-9_-]{43})\n\n') END,
    body = regexp_replace(body, E'\n\n[A-Za-z0-9_-]{43}\n\n', E'\n\n{token}\n\n')
WHERE body ~ E'\n\n[A-Za-z0-9_-]{43}\n\n';

-- What the retention actor looks for: rows whose life ended long enough ago.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX one_time_tokens_used_idx ON one_time_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX one_time_tokens_expires_idx ON one_time_tokens (expires_at);
CREATE INDEX mail_outbox_sent_idx ON mail_outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX mail_outbox_given_up_idx ON mail_outbox (created_at)
    WHERE sent_at IS NULL AND next_attempt_at = 'infinity';
