"""`/api/users`: the caller's own account, and admin management of all accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.auth import ChangePasswordRequest
from schemas.base import MAX_PAGE_SIZE, NO_CONTROL
from schemas.users import (
    AchievementList,
    AdminUserUpdate,
    Preferences,
    ProfileUpdate,
    ProgressList,
    Role,
    Statistics,
    User,
    UserPage,
)
from server.db.unit import UnitOfWork
from server.http.access import Identity
from server.security.permissions import Permission
from server.services.accounts import Accounts
from server.services.auth import Authentication
from server.services.viewer import Viewer

_OWN = {"permission": Permission.USER_READ}
_OWN_WRITE = {"permission": Permission.USER_UPDATE}
_ADMIN = {"min_role": Role.ADMIN}


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/profile", opt=_OWN)
    async def profile(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> User:
        """The caller's account."""
        return await accounts.get(uow, identity.user_id)

    @put("/profile", opt=_OWN_WRITE)
    async def update_profile(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
        data: JSONBody[ProfileUpdate],
    ) -> User:
        """Change the caller's names and profile.

        Only `firstName`, `lastName` and `profile`; any other field is a 400.
        """
        return await accounts.update_profile(uow, identity.user_id, data)

    @post("/change-password", opt=_OWN_WRITE, status_code=HTTP_204_NO_CONTENT)
    async def change_password(
        self,
        auth: NamedDependency[Authentication],
        identity: NamedDependency[Identity],
        viewer: NamedDependency[Viewer],
        data: JSONBody[ChangePasswordRequest],
    ) -> None:
        """Change the caller's password.

        Other sessions end, and access tokens issued before stop working.
        """
        await auth.change_password(
            viewer=viewer,
            session_id=identity.session_id,
            current=data.current_password,
            new=data.new_password,
            confirm=data.confirm_password,
        )

    @get("/preferences", opt=_OWN)
    async def preferences(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> Preferences:
        """The caller's preferences."""
        return await accounts.get_preferences(uow, identity.user_id)

    @put("/preferences", opt=_OWN_WRITE)
    async def put_preferences(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
        data: JSONBody[Preferences],
    ) -> Preferences:
        """Replace the caller's preferences.

        `timezone` is an IANA time zone name.
        """
        return await accounts.put_preferences(uow, identity.user_id, data)

    @get("/statistics", opt=_OWN)
    async def statistics(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> Statistics:
        """The caller's statistics."""
        return await accounts.statistics(uow, identity.user_id)

    @get("/progress", opt=_OWN)
    async def progress(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> ProgressList:
        """The caller's progress in each enrolled course."""
        items = await accounts.progress(uow, identity.user_id)
        return ProgressList(items=items)

    @get("/achievements", opt=_OWN)
    async def achievements(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        identity: NamedDependency[Identity],
    ) -> AchievementList:
        """The caller's achievements."""
        items = await accounts.achievements(uow, identity.user_id)
        return AchievementList(items=items)

    @get("/all", opt=_ADMIN)
    async def all_users(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
        role: FromQuery[Role | None] = None,
        is_active: Annotated[bool | None, QueryParameter(name="isActive")] = None,
        q: Annotated[str | None, QueryParameter(max_length=100, pattern=NO_CONTROL)] = None,
    ) -> UserPage:
        """Every account, paginated (admin).

        Filters `role`, `isActive` and `q` (name or email); `limit` is capped at 100.
        """
        return await accounts.list_users(
            uow, page=page, limit=min(limit, MAX_PAGE_SIZE), role=role, is_active=is_active, q=q
        )

    @get("/{user_id:uuid}", opt=_ADMIN)
    async def get_user(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        user_id: FromPath[uuid.UUID],
    ) -> User:
        """One account (admin)."""
        return await accounts.get(uow, str(user_id))

    @put("/{user_id:uuid}", opt=_ADMIN)
    async def update_user(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[AdminUserUpdate],
    ) -> User:
        """Change an account's names, role or activity (admin).

        Deactivating ends all its sessions at once; 409 when it would leave no active admin.
        """
        return await accounts.admin_update(uow, viewer, str(user_id), data)

    @delete("/{user_id:uuid}", opt=_ADMIN, status_code=HTTP_204_NO_CONTENT)
    async def delete_user(
        self,
        accounts: NamedDependency[Accounts],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        user_id: FromPath[uuid.UUID],
    ) -> None:
        """Deactivate and anonymise an account (admin).

        Its sessions end at once; 409 for the last active admin.
        """
        await accounts.deactivate_and_anonymise(uow, viewer, str(user_id))
