"""Accounts: reading and changing users, their profile and preferences, and admin management."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from schemas.users import (
    Achievement,
    AdminUserUpdate,
    CourseProgress,
    Preferences,
    ProfileUpdate,
    Role,
    Statistics,
    User,
    UserPage,
)
from server.db.queries import users
from server.db.statement import Statement
from server.db.unit import Params, UnitOfWork
from server.errors import Conflict, NotFound
from server.services import audit
from server.services.revocation import Revocations
from server.services.viewer import Viewer

_encoder = msgspec.json.Encoder()
T = TypeVar("T")


class _Preferences(msgspec.Struct):
    preferences: Preferences


class _RoleAndStatus(msgspec.Struct):
    role: str
    is_active: bool


class _Id(msgspec.Struct):
    id: str


async def keep_an_active_admin(uow: UnitOfWork, user_id: str) -> None:
    """Conflict when `user_id` is the only active admin, before a change that would end that.

    The active admins' rows stay locked until the unit ends, so of two changes that would
    each leave the other admin alone, the second sees the first and is refused.
    """
    admins = await uow.all(users.LOCK_ACTIVE_ADMINS, None, _Id)
    if [admin.id for admin in admins] == [user_id]:
        raise Conflict("The last active admin cannot be demoted, deactivated or deleted")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _stripped(value: str | msgspec.UnsetType) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _unset_to_none(value: T | msgspec.UnsetType) -> T | None:
    return None if value is msgspec.UNSET else value


async def _of_user(uow: UnitOfWork, statement: Statement, params: Params, row: type[T]) -> T:
    """The statement's row; NotFound when the user it names does not exist."""
    found = await uow.one(statement, params, row)
    if found is None:
        raise NotFound("User not found")
    return found


class Accounts:
    def __init__(self, revocations: Revocations) -> None:
        self._revocations = revocations

    async def get(self, uow: UnitOfWork, user_id: str) -> User:
        return await _of_user(uow, users.GET, {"id": user_id}, User)

    async def update_profile(self, uow: UnitOfWork, user_id: str, change: ProfileUpdate) -> User:
        profile = (
            None if change.profile is msgspec.UNSET else _encoder.encode(change.profile).decode()
        )
        return await self._update(
            uow,
            user_id,
            first_name=_stripped(change.first_name),
            last_name=_stripped(change.last_name),
            profile=profile,
        )

    async def _update(
        self,
        uow: UnitOfWork,
        user_id: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        profile: str | None = None,
        role: str | None = None,
        is_active: bool | None = None,
    ) -> User:
        return await _of_user(
            uow,
            users.UPDATE,
            {
                "id": user_id,
                "first_name": first_name,
                "last_name": last_name,
                "profile": profile,
                "role": role,
                "is_active": is_active,
            },
            User,
        )

    async def get_preferences(self, uow: UnitOfWork, user_id: str) -> Preferences:
        row = await _of_user(uow, users.GET_PREFERENCES, {"id": user_id}, _Preferences)
        return row.preferences

    async def put_preferences(
        self, uow: UnitOfWork, user_id: str, preferences: Preferences
    ) -> Preferences:
        row = await _of_user(
            uow,
            users.PUT_PREFERENCES,
            {"id": user_id, "preferences": _encoder.encode(preferences).decode()},
            _Preferences,
        )
        return row.preferences

    async def statistics(self, uow: UnitOfWork, user_id: str) -> Statistics:
        return await _of_user(uow, users.STATISTICS, {"id": user_id}, Statistics)

    async def progress(self, uow: UnitOfWork, user_id: str) -> list[CourseProgress]:
        return await uow.all(users.PROGRESS, {"id": user_id}, CourseProgress)

    async def achievements(self, uow: UnitOfWork, user_id: str) -> list[Achievement]:
        return await uow.all(users.ACHIEVEMENTS, {"id": user_id}, Achievement)

    async def list_users(
        self,
        uow: UnitOfWork,
        *,
        page: int,
        limit: int,
        role: str | None,
        is_active: bool | None,
        q: str | None,
    ) -> UserPage:
        params = {
            "role": role,
            "is_active": is_active,
            "pattern": _like_pattern(q) if q else None,
            "limit": limit,
            "offset": (page - 1) * limit,
        }
        items = await uow.all(users.LIST, params, User)
        total = await uow.value(users.COUNT, params)
        return UserPage(items=items, page=page, limit=limit, total=int(total or 0))

    async def admin_update(
        self, uow: UnitOfWork, viewer: Viewer, user_id: str, change: AdminUserUpdate
    ) -> User:
        demoted = change.role is not msgspec.UNSET and change.role is not Role.ADMIN
        if demoted or change.is_active is False:
            await keep_an_active_admin(uow, user_id)
        before: _RoleAndStatus | None = None
        if change.role is not msgspec.UNSET or change.is_active is not msgspec.UNSET:
            before = await _of_user(
                uow, users.LOCK_ROLE_AND_STATUS, {"id": user_id}, _RoleAndStatus
            )
        user = await self._update(
            uow,
            user_id,
            first_name=_stripped(change.first_name),
            last_name=_stripped(change.last_name),
            role=_unset_to_none(change.role),
            is_active=_unset_to_none(change.is_active),
        )
        if change.is_active is False or change.role is not msgspec.UNSET:
            # A new role or a deactivation must not wait for old tokens to expire.
            await self._revocations.end_all_sessions(uow, user_id)
        if before is not None:
            await self._record_changes(uow, viewer, user_id, before, user)
        return user

    @staticmethod
    async def _record_changes(
        uow: UnitOfWork, viewer: Viewer, user_id: str, before: _RoleAndStatus, after: User
    ) -> None:
        changes = [
            ("user.role_change", before.role, str(after.role)),
            ("user.status_change", before.is_active, after.is_active),
        ]
        for action, old, new in changes:
            if old != new:
                await audit.record(
                    uow,
                    action=action,
                    actor_id=viewer.user_id,
                    address=viewer.address,
                    target_type="user",
                    target_id=user_id,
                    details={"from": old, "to": new, "sessionsEnded": True},
                )

    async def deactivate_and_anonymise(self, uow: UnitOfWork, viewer: Viewer, user_id: str) -> None:
        await keep_an_active_admin(uow, user_id)
        if not await uow.execute(users.ANONYMISE, {"id": user_id}):
            raise NotFound("User not found")
        await self._revocations.end_all_sessions(uow, user_id)
        await audit.record(
            uow,
            action="user.delete",
            actor_id=viewer.user_id,
            address=viewer.address,
            target_type="user",
            target_id=user_id,
            details={"anonymised": True},
        )
