"""The permission map equals the reference's table; hierarchy and ownership rules."""

from __future__ import annotations

import uuid

import pytest

from server.security.permissions import (
    PERMISSIONS,
    Permission,
    Role,
    can_act_on,
    has_permission,
    role_at_least,
)

S, T, A = Role.STUDENT, Role.TEACHER, Role.ADMIN

# The reference AuthorizationService's map, written out by hand.
REFERENCE_TABLE: dict[str, set[Role]] = {
    "user.read": {S, T, A},
    "user.update": {S, T, A},
    "user.delete": {A},
    "course.read": {S, T, A},
    "course.create": {T, A},
    "course.update": {T, A},
    "course.delete": {A},
    "course.publish": {T, A},
    "assessment.read": {S, T, A},
    "assessment.create": {T, A},
    "assessment.update": {T, A},
    "assessment.delete": {T, A},
    "assessment.grade": {T, A},
    "analytics.read": {T, A},
    "analytics.export": {A},
    "system.manage": {A},
    "system.monitor": {A},
}

ALICE = uuid.UUID("11111111-1111-4111-8111-111111111111")
BOB = uuid.UUID("22222222-2222-4222-8222-222222222222")


def test_roles_are_the_three_of_the_api() -> None:
    assert [role.value for role in Role] == ["student", "teacher", "admin"]
    assert Role("teacher") is Role.TEACHER


def test_permission_names_are_exactly_the_reference_keys() -> None:
    assert {permission.value for permission in Permission} == set(REFERENCE_TABLE)
    assert set(PERMISSIONS) == set(REFERENCE_TABLE)
    assert Permission.USER_READ.value == "user.read"
    assert Permission.ASSESSMENT_GRADE.value == "assessment.grade"


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_role_permission_matrix_matches_the_reference(role: Role, permission: Permission) -> None:
    assert has_permission(role, permission) is (role in REFERENCE_TABLE[permission.value])


def test_map_is_keyed_by_plain_strings_and_read_only() -> None:
    assert PERMISSIONS["course.publish"] == frozenset({T, A})
    with pytest.raises(TypeError):
        PERMISSIONS["system.manage"] = frozenset(Role)  # type: ignore[index]


def test_unknown_permissions_are_denied_to_everyone() -> None:
    for role in Role:
        assert not has_permission(role, "course.fly")  # type: ignore[arg-type]
        assert not can_act_on(role, "system.reboot", actor_id=ALICE, owner_id=None)  # type: ignore[arg-type]


def test_unknown_roles_hold_nothing() -> None:
    assert not has_permission("guest", Permission.COURSE_READ)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "minimum", "expected"),
    [
        (S, S, True),
        (S, T, False),
        (S, A, False),
        (T, S, True),
        (T, T, True),
        (T, A, False),
        (A, S, True),
        (A, T, True),
        (A, A, True),
    ],
)
def test_hierarchy_admin_over_teacher_over_student(
    role: Role, minimum: Role, expected: bool
) -> None:
    assert role_at_least(role, minimum) is expected


def test_admin_acts_on_anyones_resources() -> None:
    for permission in Permission:
        assert can_act_on(A, permission, actor_id=ALICE, owner_id=BOB)


def test_owner_acts_on_own_resource_with_the_permission() -> None:
    assert can_act_on(T, Permission.COURSE_UPDATE, actor_id=ALICE, owner_id=ALICE)
    assert can_act_on(S, Permission.USER_UPDATE, actor_id=ALICE, owner_id=ALICE)


def test_non_admins_cannot_act_on_others_resources() -> None:
    # Stricter than the reference's hasHigherRole shortcut: API.md says "owning teacher, admin".
    assert not can_act_on(T, Permission.COURSE_UPDATE, actor_id=ALICE, owner_id=BOB)
    assert not can_act_on(T, Permission.COURSE_PUBLISH, actor_id=ALICE, owner_id=BOB)
    assert not can_act_on(S, Permission.USER_UPDATE, actor_id=ALICE, owner_id=BOB)


def test_ownership_never_grants_a_missing_permission() -> None:
    assert not can_act_on(S, Permission.COURSE_UPDATE, actor_id=ALICE, owner_id=ALICE)
    assert not can_act_on(S, Permission.USER_DELETE, actor_id=ALICE, owner_id=ALICE)
    assert not can_act_on(T, Permission.COURSE_DELETE, actor_id=ALICE, owner_id=ALICE)


def test_unowned_resources_need_only_the_permission() -> None:
    assert can_act_on(T, Permission.COURSE_CREATE, actor_id=ALICE, owner_id=None)
    assert can_act_on(S, Permission.COURSE_READ, actor_id=ALICE, owner_id=None)
    assert not can_act_on(S, Permission.COURSE_CREATE, actor_id=ALICE, owner_id=None)


def test_a_uuid_and_its_text_are_the_same_owner() -> None:
    assert can_act_on(T, Permission.COURSE_UPDATE, actor_id=str(ALICE), owner_id=ALICE)
    assert can_act_on(T, Permission.COURSE_UPDATE, actor_id=ALICE, owner_id=str(ALICE).upper())
    assert not can_act_on(T, Permission.COURSE_UPDATE, actor_id=str(ALICE), owner_id=BOB)
    assert not can_act_on(T, Permission.COURSE_UPDATE, actor_id="not-a-uuid", owner_id=ALICE)
