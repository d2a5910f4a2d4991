"""Statements over `users`: the account, its profile and preferences, admin lists."""

from __future__ import annotations

from server.db.statement import Statement

_USER = (
    "id::text AS id, email, first_name, last_name, role, is_active, is_email_verified,"
    " profile, preferences, created_at, updated_at, last_login_at, password_changed_at"
)

GET = Statement("users.get", "SELECT " + _USER + " FROM users WHERE id = %(id)s", prepare=True)

UPDATE = Statement(
    "users.update",
    "UPDATE users SET first_name = coalesce(%(first_name)s, first_name),"
    " last_name = coalesce(%(last_name)s, last_name),"
    " profile = CASE WHEN %(profile)s::jsonb IS NULL THEN profile ELSE %(profile)s::jsonb END,"
    " role = coalesce(%(role)s, role), is_active = coalesce(%(is_active)s, is_active),"
    " updated_at = now() WHERE id = %(id)s RETURNING " + _USER,
)

GET_PREFERENCES = Statement(
    "users.get_preferences",
    "SELECT preferences FROM users WHERE id = %(id)s",
    prepare=True,
)

PUT_PREFERENCES = Statement(
    "users.put_preferences",
    "UPDATE users SET preferences = %(preferences)s::jsonb, updated_at = now()"
    " WHERE id = %(id)s RETURNING preferences",
)

STATISTICS = Statement(
    "users.statistics",
    "SELECT u.created_at AS member_since, u.last_login_at,"
    " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id"
    "   AND s.revoked_at IS NULL AND s.expires_at > now()) AS active_sessions,"
    " (SELECT count(*) FROM achievements a WHERE a.user_id = u.id) AS achievements,"
    " (SELECT count(*) FROM enrollments e WHERE e.user_id = u.id) AS courses_enrolled,"
    " (SELECT count(*) FROM enrollments e WHERE e.user_id = u.id"
    "   AND e.status = 'completed') AS courses_completed,"
    " round(coalesce((SELECT avg(e.progress) FROM enrollments e WHERE e.user_id = u.id), 0)"
    "   ::numeric, 2)::float8 AS average_progress"
    " FROM users u WHERE u.id = %(id)s",
)

PROGRESS = Statement(
    "users.progress",
    "SELECT course_id::text AS course_id, progress::float8 AS progress, status, enrolled_at"
    " FROM enrollments WHERE user_id = %(id)s ORDER BY enrolled_at DESC",
)

ACHIEVEMENTS = Statement(
    "users.achievements",
    "SELECT id::text AS id, title, description, badge, earned_at FROM achievements"
    " WHERE user_id = %(id)s ORDER BY earned_at DESC",
)

LIST = Statement(
    "users.list",
    "SELECT " + _USER + " FROM users"
    " WHERE (%(role)s::text IS NULL OR role = %(role)s)"
    " AND (%(is_active)s::bool IS NULL OR is_active = %(is_active)s)"
    " AND (%(pattern)s::text IS NULL OR email ILIKE %(pattern)s"
    "   OR first_name ILIKE %(pattern)s OR last_name ILIKE %(pattern)s)"
    " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
)

COUNT = Statement(
    "users.count",
    "SELECT count(*) FROM users"
    " WHERE (%(role)s::text IS NULL OR role = %(role)s)"
    " AND (%(is_active)s::bool IS NULL OR is_active = %(is_active)s)"
    " AND (%(pattern)s::text IS NULL OR email ILIKE %(pattern)s"
    "   OR first_name ILIKE %(pattern)s OR last_name ILIKE %(pattern)s)",
)

LOCK_ROLE_AND_STATUS = Statement(
    "users.lock_role_and_status",
    "SELECT role, is_active FROM users WHERE id = %(id)s FOR UPDATE",
)

ANONYMISE = Statement(
    "users.anonymise",
    "UPDATE users SET is_active = false, email = 'deleted-' || id || '@invalid',"
    " first_name = 'Deleted', last_name = 'User', profile = '{}'::jsonb,"
    " preferences = '{}'::jsonb, password_hash = '!', updated_at = now() WHERE id = %(id)s",
)

LOCK_ACTIVE_ADMINS = Statement(
    "users.lock_active_admins",
    "SELECT id::text AS id FROM users WHERE role = 'admin' AND is_active ORDER BY id FOR UPDATE",
)

ID_BY_EMAIL = Statement(
    "users.id_by_email", "SELECT id::text FROM users WHERE lower(email) = lower(%(email)s)"
)

UNLOCK = Statement(
    "users.unlock",
    "UPDATE users SET is_active = true, login_attempts = 0, lock_until = NULL,"
    " updated_at = now() WHERE id = %(id)s",
)
