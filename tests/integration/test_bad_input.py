"""Bad input is a 400 problem+json that stores nothing: decode, validation and storage."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.support.accounts import GOOD_PASSWORD, Account, register, unique_email

JSON = {"content-type": "application/json"}


def registration(**fields: Any) -> dict[str, Any]:
    return {
        "email": unique_email("bad"),
        "password": GOOD_PASSWORD,
        "firstName": "Ada",
        "lastName": "Lovelace",
        **fields,
    }


def assert_problem(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert "trace" not in problem
    return problem


async def assert_email_free(http: httpx.AsyncClient, email: str) -> None:
    """Nothing was stored under `email`: it can still be registered."""
    await register(http, email=email)


@pytest.mark.parametrize("field", ["email", "firstName", "lastName"])
async def test_nul_in_a_registration_field_is_400_and_stores_nothing(
    http: httpx.AsyncClient, field: str
) -> None:
    body = registration()
    email = body["email"]
    body[field] = body[field][:3] + "\x00" + body[field][3:]
    problem = assert_problem(await http.post("/api/auth/register", json=body))
    assert [d["field"] for d in problem["details"]] == [field]
    await assert_email_free(http, email)


async def test_nul_in_a_new_password_is_refused(http: httpx.AsyncClient) -> None:
    body = registration(password=GOOD_PASSWORD + "\x00")
    problem = assert_problem(await http.post("/api/auth/register", json=body))
    assert problem["details"] == [
        {"field": "password", "message": "must not contain control characters"}
    ]
    await assert_email_free(http, body["email"])


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a\x00b@example.test", "password": "x"},
        {"email": "ab@example.test", "password": "x\x00"},
    ],
)
async def test_nul_at_login_is_400_or_401_never_500(
    http: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await http.post("/api/auth/login", json=body)
    assert response.status_code in (400, 401), response.text


@pytest.mark.parametrize(
    "change",
    [
        {"firstName": "Ad\x00a"},
        {"profile": {"bio": "a\x00b"}},
        {"profile": {"location": {"city": "Lon\x00don"}}},
        {"profile": {"location": {"country": "\x07"}}},
        {"profile": {"avatar": "https://example.test/a\x00.png"}},
    ],
)
async def test_control_characters_in_the_profile_are_400_and_change_nothing(
    http: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    account = await register(http)
    before = (await http.get("/api/users/profile", headers=account.auth)).json()
    response = await http.put("/api/users/profile", headers=account.auth, json=change)
    assert_problem(response)
    assert (await http.get("/api/users/profile", headers=account.auth)).json() == before


async def test_a_bio_keeps_its_line_breaks(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.put(
        "/api/users/profile", headers=account.auth, json={"profile": {"bio": "one\n\ttwo\r\n"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["bio"] == "one\n\ttwo\r\n"


async def test_nul_in_a_query_parameter_is_400(http: httpx.AsyncClient, admin: Account) -> None:
    response = await http.get("/api/users/all", params={"q": "a\x00b"}, headers=admin.auth)
    assert_problem(response)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "\xff@example.test", "password": "x"}',
        b'{"email": "a@example.test", "password": "\xed\xa0\x80"}',
        b"\xfe\xff",
    ],
)
async def test_invalid_utf8_body_is_400(http: httpx.AsyncClient, raw: bytes) -> None:
    problem = assert_problem(await http.post("/api/auth/login", content=raw, headers=JSON))
    assert problem["message"].startswith("Malformed JSON body")


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"email": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        b'{"firstName": "Ada", "profile": {"bio": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}",
    ],
)
async def test_deeply_nested_json_is_400(http: httpx.AsyncClient, raw: bytes) -> None:
    account = await register(http)
    for path, method in (("/api/auth/login", "POST"), ("/api/users/profile", "PUT")):
        response = await http.request(method, path, content=raw, headers={**JSON, **account.auth})
        problem = assert_problem(response)
        assert "nested deeper" in problem["message"]


async def test_brackets_inside_strings_are_not_nesting(http: httpx.AsyncClient) -> None:
    account = await register(http)
    bio = "[{" * 100
    response = await http.put(
        "/api/users/profile", headers=account.auth, json={"profile": {"bio": bio}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["bio"] == bio


async def test_duplicate_json_keys_are_400(http: httpx.AsyncClient) -> None:
    account = await register(http)
    raw = b'{"firstName": "Eve", "firstName": "Mallory"}'
    response = await http.put("/api/users/profile", content=raw, headers={**JSON, **account.auth})
    problem = assert_problem(response)
    assert problem["details"] == [{"field": "firstName", "message": "Duplicate field"}]
    nested = b'{"profile": {"location": {"city": "A", "city": "B"}}}'
    response = await http.put(
        "/api/users/profile", content=nested, headers={**JSON, **account.auth}
    )
    assert_problem(response)
    assert (await http.get("/api/users/profile", headers=account.auth)).json()["firstName"] == "Ada"


@pytest.mark.parametrize(
    "email",
    [
        "(comment)@example.test",
        "a,b@example.test",
        'quoted"@example.test',
        "trailing@example.test\n",
        "victim@example.test\r\nBcc: eve@evil.test",
        "ctrl\x01@example.test",
        "user@exa\x01mple.test",
        "a..b@example.test",
        ".a@example.test",
        "user@localhost",
        "user@-bad-.test",
    ],
)
async def test_addresses_the_mailer_cannot_use_are_400_and_store_nothing(
    http: httpx.AsyncClient, email: str
) -> None:
    problem = assert_problem(await http.post("/api/auth/register", json=registration(email=email)))
    assert [d["field"] for d in problem["details"]] == ["email"]
    forgot = await http.post("/api/auth/forgot-password", json={"email": email})
    assert_problem(forgot)


def look_alikes(email: str) -> dict[str, str]:
    local, domain = email.split("@")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in local)
    cyrillic_a, cyrillic_e = "\u0430", "\u0435"
    return {
        "fullwidth": f"{fullwidth}\uff20{domain}",
        "upper case": email.upper(),
        "cyrillic a": f"{local.replace('a', cyrillic_a, 1)}@{domain}",
        "zero width": f"{local[:2]}\u200b{local[2:]}@{domain}",
        "cyrillic domain": f"{local}@{domain.replace('e', cyrillic_e, 1)}",
        "bidi control": f"{local}\u202e@{domain}",
    }


async def test_look_alikes_of_an_address_make_no_second_account(
    http: httpx.AsyncClient,
) -> None:
    email = f"alice-{uuid.uuid4().hex[:8]}@example.test"
    original = await register(http, email=email)
    for kind, variant in look_alikes(email).items():
        response = await http.post("/api/auth/register", json=registration(email=variant))
        assert response.status_code in (400, 409), (kind, response.text)
    same = await http.post(
        "/api/auth/login",
        json={"email": look_alikes(email)["fullwidth"], "password": GOOD_PASSWORD},
    )
    assert same.status_code == 200, same.text
    assert same.json()["user"]["id"] == original.user_id


async def test_an_internationalised_domain_is_kept_in_ascii(http: httpx.AsyncClient) -> None:
    local = f"hans-{uuid.uuid4().hex[:8]}"
    account = await register(http, email=f"{local}@bücher.test")
    profile = (await http.get("/api/users/profile", headers=account.auth)).json()
    assert profile["email"] == f"{local}@xn--bcher-kva.test"


async def test_a_password_of_spaces_is_refused(http: httpx.AsyncClient) -> None:
    body = registration(password=" " * 16)
    problem = assert_problem(await http.post("/api/auth/register", json=body))
    assert {"field": "password", "message": "must contain a character other than spaces"} in (
        problem["details"]
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc", "Europe/Istanbul\n", "../etc/passwd"])
async def test_a_timezone_must_be_an_iana_zone(http: httpx.AsyncClient, zone: str) -> None:
    account = await register(http)
    response = await http.put(
        "/api/users/preferences", headers=account.auth, json={"timezone": zone}
    )
    assert assert_problem(response)["details"] == [
        {"field": "timezone", "message": "Expected an IANA time zone name, such as Europe/Istanbul"}
    ]
    response = await http.put(
        "/api/users/profile",
        headers=account.auth,
        json={"profile": {"location": {"timezone": zone}}},
    )
    assert [d["field"] for d in assert_problem(response)["details"]] == [
        "profile.location.timezone"
    ]
    ok = await http.put(
        "/api/users/preferences", headers=account.auth, json={"timezone": "America/Sao_Paulo"}
    )
    assert ok.status_code == 200, ok.text


async def test_a_future_date_of_birth_is_refused(http: httpx.AsyncClient) -> None:
    account = await register(http)
    response = await http.put(
        "/api/users/profile", headers=account.auth, json={"profile": {"dateOfBirth": "2999-01-01"}}
    )
    assert assert_problem(response)["details"] == [
        {"field": "profile.dateOfBirth", "message": "Expected a date that is not in the future"}
    ]
    ok = await http.put(
        "/api/users/profile", headers=account.auth, json={"profile": {"dateOfBirth": "1990-05-17"}}
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("limit", ["1e3", "1.0", "0x10", " 5", "5 ", "١٢"])
async def test_integer_query_parameters_take_digits_only(
    http: httpx.AsyncClient, admin: Account, limit: str
) -> None:
    response = await http.get("/api/users/all", params={"limit": limit}, headers=admin.auth)
    problem = assert_problem(response)
    assert {"field": "limit", "message": "Expected an integer"} in problem["details"]


async def test_integer_query_parameters_still_parse(
    http: httpx.AsyncClient, admin: Account
) -> None:
    response = await http.get(
        "/api/users/all", params={"limit": "2", "page": "1"}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["limit"] == 2


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/users/not-a-uuid", "userId"),
        ("PUT", "/api/users/1234", "userId"),
        ("DELETE", "/api/users/%00", "userId"),
        ("DELETE", "/api/auth/sessions/zzz", "sessionId"),
    ],
)
async def test_a_malformed_id_in_a_path_is_400(
    http: httpx.AsyncClient, admin: Account, method: str, path: str, field: str
) -> None:
    body = json.dumps({"firstName": "Eve"}) if method == "PUT" else None
    response = await http.request(method, path, headers={**admin.auth, **JSON}, content=body)
    problem = assert_problem(response)
    assert problem["details"] == [{"field": field, "message": "Expected a UUID"}]


async def test_an_unknown_path_is_still_404(http: httpx.AsyncClient, admin: Account) -> None:
    assert_problem(await http.get("/api/users/profile/extra", headers=admin.auth), 404)
    assert_problem(await http.get(f"/api/users/{uuid.uuid4()}", headers=admin.auth), 404)
