-- What the analytics overview and the exports read by range or in order.

-- Daily enrollments over a window, and the export read in enrollment order (its `since`
-- filter is a range of this index, and no sort stands between the cursor and its first row).
CREATE INDEX enrollments_enrolled_at_idx ON enrollments (enrolled_at, id);

-- Daily completions over a window.
CREATE INDEX enrollments_completed_at_idx ON enrollments (completed_at)
    WHERE completed_at IS NOT NULL;

-- Users active within a window: recent sessions, and recent logins.
CREATE INDEX sessions_last_seen_idx ON sessions (last_seen_at, user_id);
CREATE INDEX users_last_login_idx ON users (last_login_at) WHERE last_login_at IS NOT NULL;

-- One student's scores in one assessment by attempt: the gradebook's scoring policies.
CREATE INDEX submissions_attempts_idx ON submissions (assessment_id, user_id, attempt_number)
    INCLUDE (score);
