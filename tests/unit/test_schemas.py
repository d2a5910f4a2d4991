"""Property tests for the API bodies: round trips, unknown fields, every invalid field reported."""

from __future__ import annotations

import string

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.auth import LoginRequest, RegisterRequest
from schemas.users import Preferences, ProfileUpdate
from server.http.validation import body_field_errors

names = st.text(alphabet=string.ascii_letters + " -'", min_size=2, max_size=50).filter(
    lambda s: s.strip() != ""
)
emails = st.builds(
    lambda atoms, domain: f"{'.'.join(atoms)}@{domain}.example",
    st.lists(
        st.text(alphabet=string.ascii_lowercase + string.digits + "_+", min_size=1, max_size=10),
        min_size=1,
        max_size=3,
    ),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=20),
)
passwords = st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s)
registrations = st.builds(
    RegisterRequest, email=emails, password=passwords, first_name=names, last_name=names
)
preferences = st.builds(
    Preferences,
    language=st.sampled_from(["en", "tr", "es", "fr"]),
    timezone=st.sampled_from(["UTC", "Europe/Istanbul", "America/New_York", "Etc/GMT+3"]),
)


@given(registrations)
def test_registration_round_trips_in_camel_case(body: RegisterRequest) -> None:
    wire = msgspec.json.encode(body)
    assert b'"firstName"' in wire
    assert b'"first_name"' not in wire
    assert msgspec.json.decode(wire, type=RegisterRequest) == body
    assert body_field_errors(wire, RegisterRequest) == []


@given(registrations, st.text(alphabet=string.ascii_letters, min_size=1, max_size=20))
def test_any_unknown_field_is_refused(body: RegisterRequest, extra: str) -> None:
    payload = msgspec.to_builtins(body)
    if extra in payload:
        return
    payload[extra] = "x"
    wire = msgspec.json.encode(payload)
    try:
        msgspec.json.decode(wire, type=RegisterRequest)
        raise AssertionError("an unknown field was accepted")
    except msgspec.ValidationError:
        pass
    errors = body_field_errors(wire, RegisterRequest)
    assert errors is not None
    assert {"field": extra, "message": "Unknown field"} in [msgspec.to_builtins(e) for e in errors]


@settings(max_examples=200)
@given(
    registrations,
    st.sets(st.sampled_from(["email", "password", "firstName", "lastName"]), min_size=1),
    st.sampled_from(["drop", "wrong_type", "too_short"]),
)
def test_every_invalid_field_is_reported(body: RegisterRequest, broken: set[str], how: str) -> None:
    payload = msgspec.to_builtins(body)
    for field in broken:
        if how == "drop":
            del payload[field]
        elif how == "wrong_type":
            payload[field] = 12345
        else:
            payload[field] = ""
    errors = body_field_errors(msgspec.json.encode(payload), RegisterRequest)
    assert errors is not None
    assert {e.field for e in errors} == broken


@given(preferences)
def test_preferences_round_trip(body: Preferences) -> None:
    wire = msgspec.json.encode(body)
    assert msgspec.json.decode(wire, type=Preferences) == body


@given(st.text(min_size=1, max_size=10).filter(lambda s: s not in {"en", "tr", "es", "fr"}))
def test_unsupported_languages_are_refused(language: str) -> None:
    wire = msgspec.json.encode({"language": language})
    errors = body_field_errors(wire, Preferences)
    assert errors is not None
    assert [e.field for e in errors] == ["language"]


@given(st.sampled_from(["role", "email", "isActive", "passwordHash", "id"]))
def test_profile_updates_cannot_carry_protected_fields(field: str) -> None:
    wire = msgspec.json.encode({"firstName": "Ada", field: "admin"})
    errors = body_field_errors(wire, ProfileUpdate)
    assert errors is not None
    assert [e.field for e in errors] == [field]


def test_malformed_json_is_told_apart_from_invalid_fields() -> None:
    assert body_field_errors(b'{"email": ', LoginRequest) is None
