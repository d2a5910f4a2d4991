"""`/api/users`: the caller's own account, and admin management of all accounts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.auth import ChangePasswordRequest
from schemas.base import MAX_PAGE_SIZE
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
from server.http.access import identity_of
from server.runtime import Runtime
from server.security.permissions import Permission
from server.security.permissions import Role as RoleEnum

AnyRequest = Request[Any, Any, Any]
_OWN = {"permission": Permission.USER_READ}
_OWN_WRITE = {"permission": Permission.USER_UPDATE}
_ADMIN = {"min_role": RoleEnum.ADMIN}


def _runtime(request: AnyRequest) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/profile", opt=_OWN)
    async def profile(self, request: AnyRequest) -> User:
        """The caller's account."""
        return await _runtime(request).accounts.get(identity_of(request).user_id)

    @put("/profile", opt=_OWN_WRITE)
    async def update_profile(self, request: AnyRequest, data: JSONBody[ProfileUpdate]) -> User:
        """Change the caller's names and profile.

        Only `firstName`, `lastName` and `profile`; any other field is a 400.
        """
        return await _runtime(request).accounts.update_profile(identity_of(request).user_id, data)

    @post("/change-password", opt=_OWN_WRITE, status_code=HTTP_204_NO_CONTENT)
    async def change_password(
        self, request: AnyRequest, data: JSONBody[ChangePasswordRequest]
    ) -> None:
        """Change the caller's password.

        Other sessions end, and access tokens issued before stop working.
        """
        identity = identity_of(request)
        await _runtime(request).auth.change_password(
            user_id=identity.user_id,
            session_id=identity.session_id,
            current=data.current_password,
            new=data.new_password,
            confirm=data.confirm_password,
        )

    @get("/preferences", opt=_OWN)
    async def preferences(self, request: AnyRequest) -> Preferences:
        """The caller's preferences."""
        return await _runtime(request).accounts.get_preferences(identity_of(request).user_id)

    @put("/preferences", opt=_OWN_WRITE)
    async def put_preferences(
        self, request: AnyRequest, data: JSONBody[Preferences]
    ) -> Preferences:
        """Replace the caller's preferences.

        `timezone` is an IANA time zone name.
        """
        return await _runtime(request).accounts.put_preferences(identity_of(request).user_id, data)

    @get("/statistics", opt=_OWN)
    async def statistics(self, request: AnyRequest) -> Statistics:
        """The caller's statistics."""
        return await _runtime(request).accounts.statistics(identity_of(request).user_id)

    @get("/progress", opt=_OWN)
    async def progress(self, request: AnyRequest) -> ProgressList:
        """The caller's progress in each enrolled course."""
        items = await _runtime(request).accounts.progress(identity_of(request).user_id)
        return ProgressList(items=items)

    @get("/achievements", opt=_OWN)
    async def achievements(self, request: AnyRequest) -> AchievementList:
        """The caller's achievements."""
        items = await _runtime(request).accounts.achievements(identity_of(request).user_id)
        return AchievementList(items=items)

    @get("/all", opt=_ADMIN)
    async def all_users(
        self,
        request: AnyRequest,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1)] = 20,
        role: FromQuery[Role | None] = None,
        is_active: Annotated[bool | None, QueryParameter(name="isActive")] = None,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> UserPage:
        """Every account, paginated (admin).

        Filters `role`, `isActive` and `q` (name or email); `limit` is capped at 100.
        """
        return await _runtime(request).accounts.list_users(
            page=page, limit=min(limit, MAX_PAGE_SIZE), role=role, is_active=is_active, q=q
        )

    @get("/{user_id:uuid}", opt=_ADMIN)
    async def get_user(self, request: AnyRequest, user_id: FromPath[uuid.UUID]) -> User:
        """One account (admin)."""
        return await _runtime(request).accounts.get(str(user_id))

    @put("/{user_id:uuid}", opt=_ADMIN)
    async def update_user(
        self, request: AnyRequest, user_id: FromPath[uuid.UUID], data: JSONBody[AdminUserUpdate]
    ) -> User:
        """Change an account's names, role or activity (admin).

        Deactivating ends all its sessions at once.
        """
        return await _runtime(request).accounts.admin_update(str(user_id), data)

    @delete("/{user_id:uuid}", opt=_ADMIN, status_code=HTTP_204_NO_CONTENT)
    async def delete_user(self, request: AnyRequest, user_id: FromPath[uuid.UUID]) -> None:
        """Deactivate and anonymise an account (admin).

        Its sessions end at once.
        """
        await _runtime(request).accounts.deactivate_and_anonymise(str(user_id))
