"""Statements of the authentication flows: registration, login, lockout, one-time tokens."""

from __future__ import annotations

from server.db.statement import Statement

_USER = (
    "id::text AS id, email, first_name, last_name, role, is_active, is_email_verified,"
    " profile, preferences, created_at, updated_at, last_login_at, password_changed_at"
)

REGISTER = Statement(
    "auth.register",
    "INSERT INTO users (email, password_hash, first_name, last_name)"
    " VALUES (%(email)s, %(hash)s, %(first_name)s, %(last_name)s) RETURNING " + _USER,
)

LOGIN_LOOKUP = Statement(
    "auth.login_lookup",
    "SELECT id::text AS user_id, password_hash, is_active,"
    " greatest(0, extract(epoch FROM lock_until - now()))::float8 AS lock_left"
    " FROM users WHERE lower(email) = lower(%(email)s)",
    prepare=True,
)

RECORD_FAILURE = Statement(
    "auth.record_failure",
    "UPDATE users SET"
    " login_attempts = CASE WHEN lock_until IS NOT NULL AND lock_until <= now() THEN 1"
    "   ELSE login_attempts + 1 END,"
    " lock_until = CASE WHEN lock_until IS NOT NULL AND lock_until <= now() THEN NULL"
    "   WHEN login_attempts + 1 >= %(max)s THEN now() + %(lock)s * interval '1 second'"
    "   ELSE lock_until END"
    " WHERE id = %(user)s",
    prepare=True,
)

LOGIN_SUCCESS = Statement(
    "auth.login_success",
    "WITH u AS (UPDATE users SET login_attempts = 0, lock_until = NULL, last_login_at = now(),"
    "   password_hash = coalesce(%(rehash)s, password_hash) WHERE id = %(user)s"
    "   RETURNING " + _USER + "),"
    " s AS (INSERT INTO sessions (user_id, expires_at, remember_me, user_agent, ip)"
    "   SELECT %(user)s, now() + %(ttl)s * interval '1 second', %(remember)s, %(ua)s, %(ip)s"
    "   FROM u RETURNING id),"
    " r AS (INSERT INTO refresh_tokens (token_hash, session_id) SELECT %(refresh)s, id FROM s)"
    " SELECT u.*, s.id::text AS session_id FROM u, s",
)

STORE_ONE_TIME = Statement(
    "auth.store_one_time",
    "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at)"
    " VALUES (%(hash)s, %(user)s, %(purpose)s, now() + %(ttl)s * interval '1 second')",
)

ISSUE_ONE_TIME_BY_EMAIL = Statement(
    "auth.issue_one_time_by_email",
    "WITH u AS (SELECT id, email, first_name FROM users WHERE lower(email) = lower(%(email)s)"
    "   AND is_active),"
    " t AS (INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at)"
    "   SELECT %(hash)s, id, %(purpose)s, now() + %(ttl)s * interval '1 second' FROM u"
    "   RETURNING user_id),"
    " m AS (INSERT INTO mail_outbox (recipient, subject, body, secret)"
    "   SELECT email, %(subject)s, replace(%(body)s, '{name}', first_name), %(secret)s FROM u"
    "   RETURNING id)"
    " SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM m)",
    prepare=True,
)

CONSUME_ONE_TIME = Statement(
    "auth.consume_one_time",
    "UPDATE one_time_tokens SET used_at = now() WHERE token_hash = %(hash)s"
    " AND purpose = %(purpose)s AND used_at IS NULL AND expires_at > now()"
    " RETURNING user_id::text",
)

SET_PASSWORD = Statement(
    "auth.set_password",
    "UPDATE users SET password_hash = %(hash)s, password_changed_at = now(),"
    " login_attempts = CASE WHEN %(unlock)s THEN 0 ELSE login_attempts END,"
    " lock_until = CASE WHEN %(unlock)s THEN NULL ELSE lock_until END,"
    " updated_at = now() WHERE id = %(user)s",
)

MARK_EMAIL_VERIFIED = Statement(
    "auth.mark_email_verified",
    "UPDATE users SET is_email_verified = true, updated_at = now() WHERE id = %(user)s",
)

VERIFICATION_TARGET = Statement(
    "auth.verification_target",
    "SELECT email, first_name, is_email_verified FROM users WHERE id = %(user)s",
)

PASSWORD_CONTEXT = Statement(
    "auth.password_context",
    "SELECT password_hash, email, first_name, last_name FROM users WHERE id = %(user)s",
)
