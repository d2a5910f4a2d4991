"""Access JWTs: roundtrips, the RFC 8725 attacks refused, expiry on an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from server.security.tokens import (
    AccessClaims,
    ExpiredToken,
    TokenError,
    TokenIssuer,
    generate_hs256_secret,
    hash_opaque_token,
    new_opaque_token,
)

SECRET = b"0123456789abcdef0123456789abcdef-test-secret"
USER_ID = "6f1c2b1e-3c7a-4f57-9d4e-1f2a3b4c5d6e"
SESSION_ID = "0b7e8f10-2a3b-4c5d-8e9f-a0b1c2d3e4f5"
NOW = 1_750_000_000
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def valid_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": "sevenp",
        "aud": "sevenp-api",
        "sub": USER_ID,
        "sid": SESSION_ID,
        "role": "student",
        "iat": NOW,
        "exp": NOW + 900,
        "jti": "jti-1",
        "typ": "access",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def sign_hs256(payload: dict[str, Any], key: bytes, header: dict[str, Any] | None = None) -> str:
    """A token with a correct HMAC over whatever header and payload it is given."""
    signing_input = (
        b64url_json(header or {"alg": "HS256", "typ": "at+jwt"}) + "." + b64url_json(payload)
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def ed25519_pems(private_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> TokenIssuer:
    return TokenIssuer(secret=SECRET, clock=clock)


@pytest.fixture(scope="module")
def ed25519_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def eddsa_issuer(ed25519_key: Ed25519PrivateKey, clock: FakeClock) -> TokenIssuer:
    private_pem, public_pem = ed25519_pems(ed25519_key)
    return TokenIssuer(private_key_pem=private_pem, public_key_pem=public_pem, clock=clock)


def test_hs256_roundtrip(issuer: TokenIssuer) -> None:
    token, claims = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="teacher")
    assert issuer.verify_access(token) == claims
    assert claims.sub == USER_ID
    assert claims.sid == SESSION_ID
    assert claims.role == "teacher"
    assert (claims.iat, claims.exp) == (NOW, NOW + 900)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["typ"] == "access"
    assert (payload["iss"], payload["aud"]) == ("sevenp", "sevenp-api")


def test_user_id_may_be_a_uuid_and_is_written_canonically(issuer: TokenIssuer) -> None:
    _token, claims = issuer.issue_access(
        user_id=uuid.UUID(USER_ID), session_id=uuid.UUID(SESSION_ID), role="student"
    )
    assert (claims.sub, claims.sid) == (USER_ID, SESSION_ID)
    with pytest.raises(ValueError, match="UUID"):
        issuer.issue_access(user_id="not-a-uuid", session_id=SESSION_ID, role="student")


def test_every_token_gets_its_own_jti(issuer: TokenIssuer) -> None:
    jtis = {
        issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")[1].jti
        for _ in range(50)
    }
    assert len(jtis) == 50


def test_eddsa_roundtrip(eddsa_issuer: TokenIssuer) -> None:
    token, claims = eddsa_issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="admin")
    assert eddsa_issuer.verify_access(token) == claims
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_a_public_key_alone_verifies_but_cannot_issue(
    eddsa_issuer: TokenIssuer, ed25519_key: Ed25519PrivateKey, clock: FakeClock
) -> None:
    verifier = TokenIssuer(public_key_pem=ed25519_pems(ed25519_key)[1], clock=clock)
    token, claims = eddsa_issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="admin")
    assert verifier.verify_access(token) == claims
    with pytest.raises(RuntimeError):
        verifier.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="admin")


def test_a_private_key_alone_issues_and_verifies(
    ed25519_key: Ed25519PrivateKey, clock: FakeClock
) -> None:
    issuer = TokenIssuer(private_key_pem=ed25519_pems(ed25519_key)[0], clock=clock)
    token, claims = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    assert issuer.verify_access(token) == claims


@pytest.mark.parametrize("secret", [b"", b"x" * 31])
def test_refuses_secrets_shorter_than_32_bytes(secret: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenIssuer(secret=secret)


def test_refuses_bad_key_configurations(ed25519_key: Ed25519PrivateKey) -> None:
    private_pem, public_pem = ed25519_pems(ed25519_key)
    other_public_pem = ed25519_pems(Ed25519PrivateKey.generate())[1]
    ec_public_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    not_a_key = b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"
    bad_configurations: list[tuple[dict[str, Any], str]] = [
        ({}, "a secret or Ed25519 keys are required"),
        ({"secret": SECRET, "public_key_pem": public_pem}, "not both"),
        ({"private_key_pem": private_pem, "public_key_pem": other_public_pem}, "public half"),
        ({"public_key_pem": ec_public_pem}, "must be an Ed25519 key"),
        ({"public_key_pem": not_a_key}, "not a PEM public key"),
        ({"private_key_pem": public_pem}, "not an unencrypted PEM private key"),
        ({"secret": SECRET, "access_ttl_seconds": 0}, "access_ttl_seconds"),
        ({"secret": SECRET, "leeway_seconds": -1}, "leeway_seconds"),
    ]
    for configuration, message in bad_configurations:
        with pytest.raises(ValueError, match=message):
            TokenIssuer(**configuration)


def test_generated_secret_is_accepted_and_long() -> None:
    secret = generate_hs256_secret()
    assert len(secret.encode()) >= 64
    TokenIssuer(secret=secret.encode())


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_rejects_unsigned_tokens(issuer: TokenIssuer, alg: str) -> None:
    token = b64url_json({"alg": alg, "typ": "at+jwt"}) + "." + b64url_json(valid_payload()) + "."
    with pytest.raises(TokenError):
        issuer.verify_access(token)


def test_rejects_hs256_signed_with_the_eddsa_public_key(
    eddsa_issuer: TokenIssuer, ed25519_key: Ed25519PrivateKey
) -> None:
    public_pem = ed25519_pems(ed25519_key)[1]
    forged = sign_hs256(valid_payload(role="admin"), public_pem)
    with pytest.raises(TokenError):
        eddsa_issuer.verify_access(forged)


def test_rejects_a_token_of_the_other_algorithm(
    issuer: TokenIssuer, eddsa_issuer: TokenIssuer
) -> None:
    eddsa_token, _ = eddsa_issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="x")
    hs256_token, _ = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="x")
    with pytest.raises(TokenError):
        issuer.verify_access(eddsa_token)
    with pytest.raises(TokenError):
        eddsa_issuer.verify_access(hs256_token)


def test_rejects_a_token_signed_with_another_secret(issuer: TokenIssuer) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(sign_hs256(valid_payload(), b"another-secret-of-enough-length!!"))


def test_a_hand_signed_token_with_the_right_secret_is_accepted(issuer: TokenIssuer) -> None:
    """The attack tests below fail for the reason they name, not for the way they are built."""
    claims = issuer.verify_access(sign_hs256(valid_payload(), SECRET))
    assert claims == AccessClaims(
        sub=USER_ID, sid=SESSION_ID, role="student", iat=NOW, exp=NOW + 900, jti="jti-1"
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "sid", "iss", "aud", "role", "jti", "typ"])
def test_rejects_a_missing_claim(issuer: TokenIssuer, claim: str) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(sign_hs256(valid_payload(**{claim: None}), SECRET))


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"aud": ["sevenp-api", "another-api"]},
        {"typ": "refresh"},
        {"typ": "reset"},
        {"exp": str(NOW + 900)},
        {"exp": True},
        {"iat": "1.5"},
        {"iat": True},
        {"sub": 42},
        {"sid": ""},
        {"role": ["admin"]},
        {"nbf": NOW + 60},
    ],
)
def test_rejects_wrong_or_ill_typed_claims(issuer: TokenIssuer, changes: dict[str, Any]) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(sign_hs256(valid_payload(**changes), SECRET))


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256"},
        {"alg": "HS256", "typ": "JWT"},
        {"alg": "HS256", "typ": "refresh+jwt"},
        {"alg": "HS256", "typ": "at+jwt", "crit": ["exp"]},
        {"alg": "HS512", "typ": "at+jwt"},
    ],
)
def test_rejects_headers_of_other_token_kinds(issuer: TokenIssuer, header: dict[str, Any]) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(sign_hs256(valid_payload(), SECRET, header))


def test_accepts_the_long_form_of_the_access_token_media_type(issuer: TokenIssuer) -> None:
    header = {"alg": "HS256", "typ": "application/at+jwt"}
    issuer.verify_access(sign_hs256(valid_payload(), SECRET, header))


def test_rejects_a_tampered_payload(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    header, _payload, signature = token.split(".")
    promoted = b64url_json(valid_payload(role="admin"))
    with pytest.raises(TokenError):
        issuer.verify_access(f"{header}.{promoted}.{signature}")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "...", "é.é.é", "x" * 5000])
def test_rejects_garbage(issuer: TokenIssuer, token: str) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(token)


def test_expiry_follows_the_injected_clock(issuer: TokenIssuer, clock: FakeClock) -> None:
    token, claims = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    clock.now = claims.exp - 1
    assert issuer.verify_access(token) == claims
    clock.now = claims.exp
    with pytest.raises(ExpiredToken):
        issuer.verify_access(token)


def test_leeway_extends_expiry(clock: FakeClock) -> None:
    issuer = TokenIssuer(secret=SECRET, clock=clock, leeway_seconds=30)
    token, claims = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    clock.now = claims.exp + 29
    issuer.verify_access(token)
    clock.now = claims.exp + 30
    with pytest.raises(ExpiredToken):
        issuer.verify_access(token)


def test_expired_is_a_token_error(issuer: TokenIssuer, clock: FakeClock) -> None:
    token, _ = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    clock.now += 3600
    with pytest.raises(TokenError):
        issuer.verify_access(token)


def test_rejects_a_token_issued_in_the_future(issuer: TokenIssuer, clock: FakeClock) -> None:
    with pytest.raises(TokenError):
        issuer.verify_access(sign_hs256(valid_payload(iat=NOW + 60, exp=NOW + 960), SECRET))


def test_ttl_is_configurable(clock: FakeClock) -> None:
    issuer = TokenIssuer(secret=SECRET, clock=clock, access_ttl_seconds=60)
    _token, claims = issuer.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")
    assert claims.exp - claims.iat == 60


def test_other_issuer_and_audience_do_not_cross(clock: FakeClock) -> None:
    ours = TokenIssuer(secret=SECRET, clock=clock)
    other_audience = TokenIssuer(secret=SECRET, clock=clock, audience="sevenp-admin")
    other_issuer = TokenIssuer(secret=SECRET, clock=clock, issuer="elsewhere")
    for foreign in (other_audience, other_issuer):
        token, _ = foreign.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="admin")
        with pytest.raises(TokenError):
            ours.verify_access(token)


def test_opaque_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_opaque_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) >= 43
        assert set(token) <= set(BASE64URL)


def test_opaque_token_hash_is_a_stable_sha256() -> None:
    token = new_opaque_token()
    digest = hash_opaque_token(token)
    assert digest == hashlib.sha256(token.encode()).digest()
    assert len(digest) == 32
    assert hash_opaque_token(token) == digest
    assert hash_opaque_token(token + "x") != digest


_ISSUER = TokenIssuer(secret=SECRET, clock=FakeClock())
_TOKEN, _CLAIMS = _ISSUER.issue_access(user_id=USER_ID, session_id=SESSION_ID, role="student")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_character_change_in_payload_or_signature_is_refused(
    data: st.DataObject,
) -> None:
    assert _ISSUER.verify_access(_TOKEN) == _CLAIMS
    segments = _TOKEN.split(".")
    segment_index = data.draw(st.sampled_from([1, 2]), label="segment")
    segment = segments[segment_index]
    position = data.draw(st.integers(0, len(segment) - 1), label="position")
    replacement = data.draw(
        st.sampled_from(BASE64URL + "=.+/!~ ").filter(lambda char: char != segment[position]),
        label="replacement",
    )
    segments[segment_index] = segment[:position] + replacement + segment[position + 1 :]
    with pytest.raises(TokenError):
        _ISSUER.verify_access(".".join(segments))


def test_iat_carries_milliseconds_so_same_second_revocations_are_exact(
    issuer: TokenIssuer,
) -> None:
    token, claims = issuer.issue_access(user_id=uuid.uuid4(), session_id="s", role="student")
    assert claims.iat == round(claims.iat, 3)
    assert issuer.verify_access(token).iat == claims.iat
