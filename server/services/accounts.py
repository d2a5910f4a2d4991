"""Accounts: reading and changing users, their profile and preferences, and admin management."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import sql

from schemas.users import (
    Achievement,
    AdminUserUpdate,
    CourseProgress,
    Preferences,
    Profile,
    ProfileUpdate,
    Statistics,
    User,
    UserPage,
)
from server.db.pool import Pool
from server.errors import NotFound
from server.services.revocation import Revocations

USER_COLUMNS = (
    "id::text, email, first_name, last_name, role, is_active, is_email_verified,"
    " profile::text, preferences::text, created_at, updated_at, last_login_at,"
    " password_changed_at"
)
USER_COLUMN_COUNT = 13
_profile_decoder = msgspec.json.Decoder(Profile)
_preferences_decoder = msgspec.json.Decoder(Preferences)
_encoder = msgspec.json.Encoder()


def user_from_row(row: tuple[Any, ...]) -> User:
    return User(
        id=row[0],
        email=row[1],
        first_name=row[2],
        last_name=row[3],
        role=row[4],
        is_active=row[5],
        is_email_verified=row[6],
        profile=_profile_decoder.decode(row[7]),
        preferences=_preferences_decoder.decode(row[8]),
        created_at=row[9],
        updated_at=row[10],
        last_login_at=row[11],
        password_changed_at=row[12],
    )


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Accounts:
    def __init__(self, pool: Pool, revocations: Revocations) -> None:
        self._pool = pool
        self._revocations = revocations

    async def get(self, user_id: str) -> User:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE id = %s",
                (user_id,),
                prepare=True,
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        return user_from_row(row)

    async def update_profile(self, user_id: str, change: ProfileUpdate) -> User:
        assignments: list[sql.Composable] = []
        values: list[Any] = []
        if change.first_name is not msgspec.UNSET:
            assignments.append(sql.SQL("first_name = %s"))
            values.append(change.first_name.strip())
        if change.last_name is not msgspec.UNSET:
            assignments.append(sql.SQL("last_name = %s"))
            values.append(change.last_name.strip())
        if change.profile is not msgspec.UNSET:
            assignments.append(sql.SQL("profile = %s::jsonb"))
            values.append(_encoder.encode(change.profile).decode())
        return await self._update(user_id, assignments, values)

    async def _update(
        self, user_id: str, assignments: list[sql.Composable], values: list[Any]
    ) -> User:
        if not assignments:
            return await self.get(user_id)
        query = sql.SQL(
            "UPDATE users SET {}, updated_at = now() WHERE id = %s RETURNING {}"
        ).format(sql.SQL(", ").join(assignments), sql.SQL(USER_COLUMNS))
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, (*values, user_id))
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        return user_from_row(row)

    async def get_preferences(self, user_id: str) -> Preferences:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT preferences::text FROM users WHERE id = %s", (user_id,), prepare=True
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        return _preferences_decoder.decode(row[0])

    async def put_preferences(self, user_id: str, preferences: Preferences) -> Preferences:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET preferences = %s::jsonb, updated_at = now()"
                " WHERE id = %s RETURNING preferences::text",
                (_encoder.encode(preferences).decode(), user_id),
                prepare=True,
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        return _preferences_decoder.decode(row[0])

    async def statistics(self, user_id: str) -> Statistics:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT u.created_at, u.last_login_at,"
                " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id"
                "   AND s.revoked_at IS NULL AND s.expires_at > now()),"
                " (SELECT count(*) FROM achievements a WHERE a.user_id = u.id),"
                " (SELECT count(*) FROM enrollments e WHERE e.user_id = u.id),"
                " (SELECT count(*) FROM enrollments e WHERE e.user_id = u.id"
                "   AND e.status = 'completed'),"
                " (SELECT coalesce(avg(e.progress), 0) FROM enrollments e WHERE e.user_id = u.id)"
                " FROM users u WHERE u.id = %s",
                (user_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound("User not found")
        return Statistics(
            member_since=row[0],
            last_login_at=row[1],
            active_sessions=row[2],
            achievements=row[3],
            courses_enrolled=row[4],
            courses_completed=row[5],
            average_progress=round(float(row[6]), 2),
        )

    async def progress(self, user_id: str) -> list[CourseProgress]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT course_id::text, progress, status, enrolled_at FROM enrollments"
                " WHERE user_id = %s ORDER BY enrolled_at DESC",
                (user_id,),
            )
            rows = await cur.fetchall()
        return [
            CourseProgress(course_id=r[0], progress=float(r[1]), status=r[2], enrolled_at=r[3])
            for r in rows
        ]

    async def achievements(self, user_id: str) -> list[Achievement]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id::text, title, description, badge, earned_at FROM achievements"
                " WHERE user_id = %s ORDER BY earned_at DESC",
                (user_id,),
            )
            rows = await cur.fetchall()
        return [
            Achievement(id=r[0], title=r[1], description=r[2], badge=r[3], earned_at=r[4])
            for r in rows
        ]

    async def list_users(
        self, *, page: int, limit: int, role: str | None, is_active: bool | None, q: str | None
    ) -> UserPage:
        conditions: list[sql.Composable] = []
        values: list[Any] = []
        if role is not None:
            conditions.append(sql.SQL("role = %s"))
            values.append(role)
        if is_active is not None:
            conditions.append(sql.SQL("is_active = %s"))
            values.append(is_active)
        if q:
            conditions.append(
                sql.SQL("(email ILIKE %s OR first_name ILIKE %s OR last_name ILIKE %s)")
            )
            values.extend([_like_pattern(q)] * 3)
        where = (
            sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        )
        query = sql.SQL(
            "SELECT {}, count(*) OVER () FROM users{} ORDER BY created_at DESC, id"
            " LIMIT %s OFFSET %s"
        ).format(sql.SQL(USER_COLUMNS), where)
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, (*values, limit, (page - 1) * limit))
            rows = await cur.fetchall()
            total = rows[0][USER_COLUMN_COUNT] if rows else await self._count(conn, where, values)
        return UserPage(
            items=[user_from_row(r) for r in rows], page=page, limit=limit, total=int(total)
        )

    @staticmethod
    async def _count(conn: Any, where: sql.Composable, values: list[Any]) -> int:
        cur = await conn.execute(sql.SQL("SELECT count(*) FROM users{}").format(where), values)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def admin_update(self, user_id: str, change: AdminUserUpdate) -> User:
        assignments: list[sql.Composable] = []
        values: list[Any] = []
        for column, value in (
            ("first_name", change.first_name),
            ("last_name", change.last_name),
            ("role", change.role),
            ("is_active", change.is_active),
        ):
            if value is not msgspec.UNSET:
                assignments.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                values.append(value.strip() if isinstance(value, str) else value)
        user = await self._update(user_id, assignments, values)
        if change.is_active is False or change.role is not msgspec.UNSET:
            # A new role or a deactivation must not wait for old tokens to expire.
            await self._revocations.end_all_sessions(user_id)
        return user

    async def deactivate_and_anonymise(self, user_id: str) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET is_active = false, email = 'deleted-' || id || '@invalid',"
                " first_name = 'Deleted', last_name = 'User', profile = '{}'::jsonb,"
                " preferences = '{}'::jsonb, password_hash = '!',"
                " updated_at = now() WHERE id = %s RETURNING id",
                (user_id,),
            )
            if await cur.fetchone() is None:
                raise NotFound("User not found")
        await self._revocations.end_all_sessions(user_id)
