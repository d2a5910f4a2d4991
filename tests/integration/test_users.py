"""`/api/users`: own profile and preferences, and admin management."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.accounts import Account, register

PREFERENCES = {
    "language": "tr",
    "timezone": "Europe/Istanbul",
    "notifications": {"email": False, "push": True, "sms": True},
    "privacy": {"profileVisible": False, "showProgress": True, "allowMessages": False},
}


async def test_profile_read_and_update(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.put(
        "/api/users/profile",
        headers=account.auth,
        json={
            "firstName": "Augusta",
            "profile": {"bio": "Analyst", "phone": "+905551112233", "location": {"city": "London"}},
        },
    )
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["firstName"] == "Augusta"
    assert user["lastName"] == "Lovelace"
    assert user["profile"]["location"]["city"] == "London"
    again = (await http.get("/api/users/profile", headers=account.auth)).json()
    assert again == user


@pytest.mark.parametrize("field", ["role", "email", "isActive", "passwordHash"])
async def test_forbidden_profile_fields_are_400_and_change_nothing(
    http: httpx.AsyncClient, field: str
) -> None:
    account = await register(http)
    before = (await http.get("/api/users/profile", headers=account.auth)).json()
    response = await http.put(
        "/api/users/profile", headers=account.auth, json={"firstName": "Eve", field: "admin"}
    )
    assert response.status_code == 400
    assert {"field": field, "message": "Unknown field"} in response.json()["details"]
    assert (await http.get("/api/users/profile", headers=account.auth)).json() == before


async def test_preferences_default_then_replace(http: httpx.AsyncClient) -> None:
    account = await register(http)
    defaults = (await http.get("/api/users/preferences", headers=account.auth)).json()
    assert defaults["language"] == "en"
    assert defaults["notifications"] == {"email": True, "push": True, "sms": False}
    response = await http.put("/api/users/preferences", headers=account.auth, json=PREFERENCES)
    assert response.status_code == 200
    assert response.json() == PREFERENCES
    bad = await http.put(
        "/api/users/preferences", headers=account.auth, json={**PREFERENCES, "language": "xx"}
    )
    assert bad.status_code == 400
    assert (await http.get("/api/users/preferences", headers=account.auth)).json() == PREFERENCES


async def test_statistics_progress_and_achievements_are_the_users_own(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http)
    stats = (await http.get("/api/users/statistics", headers=account.auth)).json()
    assert stats["activeSessions"] == 1
    assert stats["coursesEnrolled"] == 0
    assert (await http.get("/api/users/progress", headers=account.auth)).json() == {"items": []}
    achievements = await http.get("/api/users/achievements", headers=account.auth)
    assert achievements.json() == {"items": []}


async def test_admin_lists_filters_and_pages_users(http: httpx.AsyncClient, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    for _ in range(3):
        await register(http, email=f"page-{marker}-{uuid.uuid4().hex[:6]}@example.test")
    response = await http.get(
        "/api/users/all", headers=admin.auth, params={"q": marker, "limit": 2, "page": 1}
    )
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert (page["page"], page["limit"]) == (1, 2)
    second = (
        await http.get(
            "/api/users/all", headers=admin.auth, params={"q": marker, "limit": 2, "page": 2}
        )
    ).json()
    assert len(second["items"]) == 1
    capped = await http.get("/api/users/all", headers=admin.auth, params={"limit": 500})
    assert capped.json()["limit"] == 100
    students = await http.get(
        "/api/users/all",
        headers=admin.auth,
        params={"role": "student", "isActive": "true", "q": marker},
    )
    assert students.json()["total"] == 3


async def test_admin_deactivation_ends_sessions_at_once(
    http: httpx.AsyncClient, admin: Account
) -> None:
    account = await register(http)
    response = await http.put(
        f"/api/users/{account.user_id}", headers=admin.auth, json={"isActive": False}
    )
    assert response.status_code == 200
    assert response.json()["isActive"] is False
    assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 401
    login = await http.post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )
    assert login.status_code == 401


async def test_admin_delete_anonymises(http: httpx.AsyncClient, admin: Account) -> None:
    account = await register(http)
    assert (
        await http.delete(f"/api/users/{account.user_id}", headers=admin.auth)
    ).status_code == 204
    user = (await http.get(f"/api/users/{account.user_id}", headers=admin.auth)).json()
    assert user["isActive"] is False
    assert account.email not in user["email"]
    assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 401


async def test_a_malformed_id_is_400_and_an_unknown_one_404(
    http: httpx.AsyncClient, admin: Account
) -> None:
    assert (await http.get("/api/users/not-a-uuid", headers=admin.auth)).status_code in (400, 404)
    assert (await http.get(f"/api/users/{uuid.uuid4()}", headers=admin.auth)).status_code == 404


async def test_students_cannot_reach_admin_routes(http: httpx.AsyncClient) -> None:
    account = await register(http)
    other = await register(http)
    response = await http.put(
        f"/api/users/{other.user_id}", headers=account.auth, json={"role": "admin"}
    )
    assert response.status_code == 403
    assert (await http.get("/api/users/all", headers=account.auth)).status_code == 403
