-- A mail's one-time token lives apart from its body, only until the mail is sent or given up.
ALTER TABLE mail_outbox ADD COLUMN secret text;

-- Rows queued before: the token is the line of 43 URL-safe characters between blank lines.
UPDATE mail_outbox
SET secret = CASE WHEN sent_at IS NULL AND isfinite(next_attempt_at)
                  THEN substring(body FROM E'\n\n([A-Za-z0-9_-]{43})\n\n') END,
    body = regexp_replace(body, E'\n\n[A-Za-z0-9_-]{43}\n\n', E'\n\n{token}\n\n')
WHERE body ~ E'\n\n[A-Za-z0-9_-]{43}\n\n';
