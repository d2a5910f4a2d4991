"""Access JWTs issued and verified per RFC 8725 and RFC 9068, and opaque one-time secrets.

Access tokens are short-lived JWTs signed with HS256 (a shared secret) or
EdDSA (an Ed25519 key pair). Refresh, password-reset and email-verification
tokens are opaque random strings of which the database keeps only a SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MIN_HS256_SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 4096

ACCESS_TYP_CLAIM = "access"
ACCESS_TYP_HEADER = "at+jwt"
_ACCEPTED_HEADER_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "sid", "role", "jti", "typ"]


class TokenError(Exception):
    """A token is not acceptable: malformed, forged, of another kind or expired."""


class ExpiredToken(TokenError):
    """A genuine access token whose lifetime is over."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified claims of an access token."""

    sub: str
    sid: str
    role: str
    iat: float
    exp: int
    jti: str


def new_opaque_token() -> str:
    """A fresh URL-safe secret of 256 random bits, for refresh, reset and verification."""
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> bytes:
    """The SHA-256 digest under which an opaque token is stored and looked up."""
    return hashlib.sha256(token.encode()).digest()


def generate_hs256_secret() -> str:
    """A fresh 384-bit HS256 secret, URL-safe text for an environment variable."""
    return secrets.token_urlsafe(48)


def _load_ed25519_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError("private_key_pem is not an unencrypted PEM private key") from exc
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise ValueError("private_key_pem must be an Ed25519 key")


def _load_ed25519_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("public_key_pem is not a PEM public key") from exc
    if isinstance(key, Ed25519PublicKey):
        return key
    raise ValueError("public_key_pem must be an Ed25519 key")


def _raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _ed25519_keys(
    private_key_pem: bytes | None, public_key_pem: bytes | None
) -> tuple[Ed25519PrivateKey | None, Ed25519PublicKey]:
    if private_key_pem is None:
        if public_key_pem is None:
            raise ValueError("a secret or Ed25519 keys are required")
        return None, _load_ed25519_public_key(public_key_pem)
    private_key = _load_ed25519_private_key(private_key_pem)
    public_key = private_key.public_key()
    if public_key_pem is not None and _raw_public_bytes(
        _load_ed25519_public_key(public_key_pem)
    ) != _raw_public_bytes(public_key):
        raise ValueError("public_key_pem is not the public half of private_key_pem")
    return private_key, public_key


def _string_claim(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise TokenError(f"claim {name!r} must be a non-empty string")
    return value


def _numeric_date_claim(payload: Mapping[str, Any], name: str) -> float:
    """A NumericDate (RFC 7519 section 2): seconds, possibly with a fraction."""
    value = payload[name]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TokenError(f"claim {name!r} must be a number")
    return float(value)


def _integer_claim(payload: Mapping[str, Any], name: str) -> int:
    value = payload[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError(f"claim {name!r} must be an integer")
    return value


class TokenIssuer:
    """Issues and verifies access tokens with one algorithm and one key, fixed at construction.

    Give either `secret` (HS256, at least 32 bytes) or Ed25519 PEM keys
    (EdDSA): the private key to issue, the public key to verify, or both.
    The algorithm a token claims is never trusted: only the configured one is
    accepted. Times come from `clock`, so tests can move it.
    """

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        private_key_pem: bytes | None = None,
        public_key_pem: bytes | None = None,
        issuer: str = "sevenp",
        audience: str = "sevenp-api",
        access_ttl_seconds: int = 900,
        clock: Callable[[], float] = time.time,
        leeway_seconds: int = 0,
    ) -> None:
        self._signing_key: bytes | Ed25519PrivateKey | None
        self._verifying_key: bytes | Ed25519PublicKey
        if secret is not None:
            if private_key_pem is not None or public_key_pem is not None:
                raise ValueError("give either a secret or Ed25519 keys, not both")
            if len(secret) < MIN_HS256_SECRET_BYTES:
                raise ValueError(f"an HS256 secret needs at least {MIN_HS256_SECRET_BYTES} bytes")
            self.algorithm = "HS256"
            self._signing_key = self._verifying_key = secret
        else:
            self.algorithm = "EdDSA"
            self._signing_key, self._verifying_key = _ed25519_keys(private_key_pem, public_key_pem)
        if access_ttl_seconds <= 0:
            raise ValueError("access_ttl_seconds must be positive")
        if leeway_seconds < 0:
            raise ValueError("leeway_seconds must not be negative")

        self.issuer = issuer
        self.audience = audience
        self.access_ttl_seconds = access_ttl_seconds
        self._clock = clock
        self._leeway_seconds = leeway_seconds
        self._algorithms = [self.algorithm]
        # Times are checked against `clock` below, not against PyJWT's wall clock.
        self._jwt = jwt.PyJWT(
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "strict_aud": True,
                "enforce_minimum_key_length": True,
            }
        )

    def issue_access(
        self, *, user_id: uuid.UUID | str, session_id: uuid.UUID | str, role: str
    ) -> tuple[str, AccessClaims]:
        """A signed access token for the user's session, and the claims it carries."""
        if self._signing_key is None:
            raise RuntimeError("this issuer holds only a public key: it can verify, not issue")
        # Milliseconds in iat order a token exactly against a revocation made in the same second.
        issued_at = round(self._clock(), 3)
        claims = AccessClaims(
            sub=str(uuid.UUID(str(user_id))),
            sid=str(session_id),
            role=str(role),
            iat=issued_at,
            exp=int(issued_at) + self.access_ttl_seconds,
            jti=secrets.token_urlsafe(16),
        )
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": claims.sub,
            "sid": claims.sid,
            "role": claims.role,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "typ": ACCESS_TYP_CLAIM,
        }
        token = self._jwt.encode(
            payload,
            self._signing_key,
            algorithm=self.algorithm,
            headers={"typ": ACCESS_TYP_HEADER},
        )
        return token, claims

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of a genuine, current access token of this issuer.

        Raises ExpiredToken for an expired one and TokenError for anything else
        that is not such a token.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("token too long")
        try:
            decoded = self._jwt.decode_complete(
                token,
                self._verifying_key,
                algorithms=self._algorithms,
                audience=self.audience,
                issuer=self.issuer,
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc

        header_type = decoded["header"].get("typ")
        if not isinstance(header_type, str) or header_type.lower() not in _ACCEPTED_HEADER_TYPES:
            raise TokenError("not an access token (header typ)")
        payload: dict[str, Any] = decoded["payload"]
        if payload["typ"] != ACCESS_TYP_CLAIM:
            raise TokenError("not an access token (typ claim)")

        claims = AccessClaims(
            sub=_string_claim(payload, "sub"),
            sid=_string_claim(payload, "sid"),
            role=_string_claim(payload, "role"),
            iat=_numeric_date_claim(payload, "iat"),
            exp=_integer_claim(payload, "exp"),
            jti=_string_claim(payload, "jti"),
        )
        now = self._clock()
        if now >= claims.exp + self._leeway_seconds:
            raise ExpiredToken("token expired")
        if claims.iat > now + self._leeway_seconds:
            raise TokenError("token issued in the future")
        if "nbf" in payload:
            not_before = _integer_claim(payload, "nbf")
            if not_before > now + self._leeway_seconds:
                raise TokenError("token not yet valid")
        return claims
