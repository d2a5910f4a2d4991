"""The reference's auth integration tests, rewritten for this API, plus session control."""

from __future__ import annotations

import email
import re
from pathlib import Path

import httpx

from tests.support.accounts import GOOD_PASSWORD, login, register, unique_email
from tests.support.waiting import eventually


async def test_register_answers_tokens_and_a_student_without_secrets(
    http: httpx.AsyncClient,
) -> None:
    address = unique_email()
    response = await http.post(
        "/api/auth/register",
        json={
            "email": address,
            "password": GOOD_PASSWORD,
            "firstName": "Ada",
            "lastName": "Lovelace",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "refreshToken", "user"}
    assert body["user"]["email"] == address
    assert body["user"]["role"] == "student"
    assert body["user"]["isEmailVerified"] is False
    assert "password" not in response.text.lower().replace("passwordchangedat", "")


async def test_register_refuses_a_chosen_role(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/register",
        json={
            "email": unique_email(),
            "password": GOOD_PASSWORD,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "role": "admin",
        },
    )
    assert response.status_code == 400
    assert {"field": "role", "message": "Unknown field"} in response.json()["details"]


async def test_duplicate_email_is_a_conflict_whatever_its_case(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.post(
        "/api/auth/register",
        json={
            "email": account.email.upper(),
            "password": GOOD_PASSWORD,
            "firstName": "Ada",
            "lastName": "Lovelace",
        },
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_registration_lists_every_invalid_field(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/auth/register", json={"email": "not-an-email", "password": "", "firstName": "A"}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert problem["error"] == "Validation Error"
    fields = {d["field"] for d in problem["details"]}
    assert fields == {"email", "password", "firstName", "lastName"}


async def test_weak_and_common_passwords_are_refused(http: httpx.AsyncClient) -> None:
    for weak in ("short1", "password123", "qwertyuiop"):
        response = await http.post(
            "/api/auth/register",
            json={
                "email": unique_email(),
                "password": weak,
                "firstName": "Ada",
                "lastName": "Lovelace",
            },
        )
        assert response.status_code == 400, weak
        assert response.json()["details"][0]["field"] == "password"


async def test_long_passwords_are_accepted_untruncated(http: httpx.AsyncClient) -> None:
    long_password = "x7" * 50
    account = await register(http, password=long_password)
    response = await http.post(
        "/api/auth/login", json={"email": account.email, "password": long_password[:-1] + "8"}
    )
    assert response.status_code == 401
    assert (await login(http, account.email, long_password)).token


async def test_login_with_a_wrong_password_or_unknown_email_is_one_generic_401(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http)
    wrong = await http.post(
        "/api/auth/login", json={"email": account.email, "password": "wrong password 1"}
    )
    unknown = await http.post(
        "/api/auth/login", json={"email": unique_email(), "password": "wrong password 1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]


async def test_me_answers_from_the_token(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.get("/api/auth/me", headers=account.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["userId"] == account.user_id
    assert body["role"] == "student"
    assert set(body) == {"userId", "role", "sessionId", "expiresAt"}


async def test_protected_routes_need_a_token(http: httpx.AsyncClient) -> None:
    for path in ("/api/auth/me", "/api/users/profile", "/api/auth/sessions"):
        response = await http.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_access_cookie_authenticates_too(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.get("/api/auth/me", headers={"cookie": f"access_token={account.token}"})
    assert response.status_code == 200


async def test_logout_ends_the_session_at_once(http: httpx.AsyncClient) -> None:
    account = await register(http)
    assert (await http.post("/api/auth/logout", headers=account.auth)).status_code == 204
    assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 401
    refreshed = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert refreshed.status_code == 401


async def test_logout_all_ends_every_session(http: httpx.AsyncClient) -> None:
    first = await register(http)
    second = await login(http, first.email)
    assert (await http.post("/api/auth/logout-all", headers=first.auth)).status_code == 204
    for account in (first, second):
        assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 401
        refreshed = await http.post(
            "/api/auth/refresh", json={"refreshToken": account.refresh_token}
        )
        assert refreshed.status_code == 401
    assert (await login(http, first.email)).token


async def test_refresh_rotates_and_reuse_revokes_the_session(http: httpx.AsyncClient) -> None:
    account = await register(http)
    rotated = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert rotated.status_code == 200
    fresh = rotated.json()
    assert fresh["refreshToken"] != account.refresh_token
    headers = {"Authorization": f"Bearer {fresh['accessToken']}"}
    assert (await http.get("/api/auth/me", headers=headers)).status_code == 200

    reused = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert reused.status_code == 401
    assert (await http.get("/api/auth/me", headers=headers)).status_code == 401
    after = await http.post("/api/auth/refresh", json={"refreshToken": fresh["refreshToken"]})
    assert after.status_code == 401


async def test_sessions_list_marks_the_current_one_and_can_end_another(
    http: httpx.AsyncClient,
) -> None:
    first = await register(http)
    second = await login(http, first.email)
    response = await http.get("/api/auth/sessions", headers=first.auth)
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    other = next(s for s in sessions if not s["current"])
    ended = await http.delete(f"/api/auth/sessions/{other['id']}", headers=first.auth)
    assert ended.status_code == 204
    assert (await http.get("/api/auth/me", headers=second.auth)).status_code == 401
    assert (await http.get("/api/auth/me", headers=first.auth)).status_code == 200


async def test_a_user_cannot_end_another_users_session(http: httpx.AsyncClient) -> None:
    victim = await register(http)
    attacker = await register(http)
    me = (await http.get("/api/auth/me", headers=victim.auth)).json()
    response = await http.delete(f"/api/auth/sessions/{me['sessionId']}", headers=attacker.auth)
    assert response.status_code == 404
    assert (await http.get("/api/auth/me", headers=victim.auth)).status_code == 200


async def test_password_change_ends_other_sessions_and_old_tokens(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http)
    other = await login(http, account.email)
    new_password = "a brand new passphrase 7"
    response = await http.post(
        "/api/users/change-password",
        headers=account.auth,
        json={
            "currentPassword": GOOD_PASSWORD,
            "newPassword": new_password,
            "confirmPassword": new_password,
        },
    )
    assert response.status_code == 204
    assert (await http.get("/api/auth/me", headers=other.auth)).status_code == 401
    assert (await http.get("/api/auth/me", headers=account.auth)).status_code == 401
    kept = await http.post("/api/auth/refresh", json={"refreshToken": account.refresh_token})
    assert kept.status_code == 200
    gone = await http.post("/api/auth/refresh", json={"refreshToken": other.refresh_token})
    assert gone.status_code == 401
    assert (await login(http, account.email, new_password)).token


async def test_five_failed_logins_lock_the_account(http: httpx.AsyncClient) -> None:
    account = await register(http)
    for _ in range(5):
        response = await http.post(
            "/api/auth/login", json={"email": account.email, "password": "not the password"}
        )
        assert response.status_code == 401
    locked = await http.post(
        "/api/auth/login", json={"email": account.email, "password": GOOD_PASSWORD}
    )
    assert locked.status_code == 423
    assert 7000 <= int(locked.headers["retry-after"]) <= 7200


def _mail_to(mail_dir: Path, recipient: str, subject_word: str) -> email.message.Message | None:
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == recipient and subject_word in message["Subject"]:
            return message
    return None


async def _wait_for_mail(mail_dir: Path, recipient: str, subject_word: str) -> str:
    await eventually(
        lambda: _mail_to(mail_dir, recipient, subject_word) is not None, within=10, poll=0.1
    )
    message = _mail_to(mail_dir, recipient, subject_word)
    assert message is not None
    payload = message.get_payload(decode=True)
    text = payload.decode() if isinstance(payload, bytes) else str(message.get_payload())
    token = re.search(r"^([A-Za-z0-9_-]{40,})$", text, re.MULTILINE)
    assert token is not None, text
    return token.group(1)


async def test_forgot_and_reset_password_through_the_mailed_token(
    http: httpx.AsyncClient, mail_dir: Path
) -> None:
    account = await register(http)
    other = await login(http, account.email)
    for address in (account.email, unique_email()):
        response = await http.post("/api/auth/forgot-password", json={"email": address})
        assert response.status_code == 202
    token = await _wait_for_mail(mail_dir, account.email, "Reset")
    new_password = "reset to something fresh 9"
    reset = await http.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": new_password}
    )
    assert reset.status_code == 204
    again = await http.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": new_password + "x"}
    )
    assert again.status_code == 400
    assert (await http.get("/api/auth/me", headers=other.auth)).status_code == 401
    assert (await login(http, account.email, new_password)).token


async def test_verify_email_through_the_mailed_token(
    http: httpx.AsyncClient, mail_dir: Path
) -> None:
    account = await register(http)
    token = await _wait_for_mail(mail_dir, account.email, "Verify")
    assert (await http.post("/api/auth/verify-email", json={"token": token})).status_code == 204
    assert (await http.post("/api/auth/verify-email", json={"token": token})).status_code == 400
    profile = await http.get("/api/users/profile", headers=account.auth)
    assert profile.json()["isEmailVerified"] is True


async def test_a_weaker_stored_hash_is_rehashed_at_the_next_good_login(
    http: httpx.AsyncClient, database_url: str
) -> None:
    import argon2
    import psycopg

    account = await register(http)
    weak = argon2.PasswordHasher(memory_cost=8192, time_cost=1, parallelism=1).hash(GOOD_PASSWORD)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s", (weak, account.user_id)
        )
        assert (await login(http, account.email)).token
        cur = await conn.execute(
            "SELECT password_hash FROM users WHERE id = %s", (account.user_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await login(http, account.email)).token


async def test_an_expired_reset_token_is_refused(
    http: httpx.AsyncClient, mail_dir: Path, database_url: str
) -> None:
    import psycopg

    account = await register(http)
    assert (
        await http.post("/api/auth/forgot-password", json={"email": account.email})
    ).status_code == 202
    token = await _wait_for_mail(mail_dir, account.email, "Reset")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE one_time_tokens SET expires_at = now() - interval '1 second'"
            " WHERE user_id = %s AND purpose = 'password_reset'",
            (account.user_id,),
        )
    response = await http.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": "never applied pass 5"}
    )
    assert response.status_code == 400
    assert (await login(http, account.email)).token
