"""Role-based access control: the roles, the permission map and the ownership rule.

The map is the reference AuthorizationService's. Anything it does not name is
denied. Outside the admin role, acting on a resource that has an owner also
requires being that owner (API.md's "owning teacher, admin").
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from schemas.users import Role

__all__ = ["PERMISSIONS", "Permission", "Role", "can_act_on", "has_permission", "role_at_least"]

_RANK: Mapping[Role, int] = MappingProxyType({Role.STUDENT: 0, Role.TEACHER: 1, Role.ADMIN: 2})


def role_at_least(role: Role, minimum: Role) -> bool:
    """Whether `role` ranks at or above `minimum` (admin > teacher > student)."""
    return _RANK[role] >= _RANK[minimum]


class Permission(enum.StrEnum):
    USER_READ = "user.read"
    USER_UPDATE = "user.update"
    USER_DELETE = "user.delete"
    COURSE_READ = "course.read"
    COURSE_CREATE = "course.create"
    COURSE_UPDATE = "course.update"
    COURSE_DELETE = "course.delete"
    COURSE_PUBLISH = "course.publish"
    ASSESSMENT_READ = "assessment.read"
    ASSESSMENT_CREATE = "assessment.create"
    ASSESSMENT_UPDATE = "assessment.update"
    ASSESSMENT_DELETE = "assessment.delete"
    ASSESSMENT_GRADE = "assessment.grade"
    ANALYTICS_READ = "analytics.read"
    ANALYTICS_EXPORT = "analytics.export"
    SYSTEM_MANAGE = "system.manage"
    SYSTEM_MONITOR = "system.monitor"


_EVERYONE = frozenset({Role.STUDENT, Role.TEACHER, Role.ADMIN})
_STAFF = frozenset({Role.TEACHER, Role.ADMIN})
_ADMIN_ONLY = frozenset({Role.ADMIN})

PERMISSIONS: Mapping[str, frozenset[Role]] = MappingProxyType(
    {
        Permission.USER_READ: _EVERYONE,
        Permission.USER_UPDATE: _EVERYONE,
        Permission.USER_DELETE: _ADMIN_ONLY,
        Permission.COURSE_READ: _EVERYONE,
        Permission.COURSE_CREATE: _STAFF,
        Permission.COURSE_UPDATE: _STAFF,
        Permission.COURSE_DELETE: _ADMIN_ONLY,
        Permission.COURSE_PUBLISH: _STAFF,
        Permission.ASSESSMENT_READ: _EVERYONE,
        Permission.ASSESSMENT_CREATE: _STAFF,
        Permission.ASSESSMENT_UPDATE: _STAFF,
        Permission.ASSESSMENT_DELETE: _STAFF,
        Permission.ASSESSMENT_GRADE: _STAFF,
        Permission.ANALYTICS_READ: _STAFF,
        Permission.ANALYTICS_EXPORT: _ADMIN_ONLY,
        Permission.SYSTEM_MANAGE: _ADMIN_ONLY,
        Permission.SYSTEM_MONITOR: _ADMIN_ONLY,
    }
)


def has_permission(role: Role, permission: Permission) -> bool:
    """Whether `role` holds `permission`; False for anything the map does not name."""
    return role in PERMISSIONS.get(permission, frozenset())


def _same_id(first: uuid.UUID | str, second: uuid.UUID | str) -> bool:
    if isinstance(first, str) == isinstance(second, str):
        return first == second
    try:
        return uuid.UUID(str(first)) == uuid.UUID(str(second))
    except ValueError:
        return False


def can_act_on(
    role: Role,
    permission: Permission,
    *,
    actor_id: uuid.UUID | str,
    owner_id: uuid.UUID | str | None,
) -> bool:
    """Whether the actor may use `permission` on a resource owned by `owner_id`.

    An admin may act on anything; anyone else needs the permission and, when
    the resource has an owner, to be that owner. A UUID and its text compare equal.
    """
    if not has_permission(role, permission):
        return False
    if role == Role.ADMIN or owner_id is None:
        return True
    return _same_id(actor_id, owner_id)
