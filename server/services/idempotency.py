"""Retry-safe writes: a caller's key runs its request once and keeps the answer 24 h.

    claim ──(own short transaction, committed)──> in flight, leased 60 s
      │  duplicate while in flight: KeyInUse (409); another request under the key: KeyReused
      │  (422); already answered: the stored response
      ▼
    request's unit of work ── complete(): the response row, in the same transaction as the write
      │  rolled back, or the request failed: release() deletes the claim, a retry runs again
      ▼
    commit

The claim commits on its own before the request's work begins, so a concurrent duplicate on
any instance sees it at once; the response is stored in the request's transaction, so a
committed write always has its answer stored and a rolled-back one never does. A process
that dies mid-request leaves a claim whose lease runs out; the next retry takes it over.

Only the caller holds the key: rows are found by a hash of scope and key, the request's
fingerprint is keyed with it, and the stored response is sealed (AES-GCM) with a key derived
from it, so a copy of the table reveals neither bodies (tokens, for a registration) nor a
fast hash of what was sent.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.db.queries import idempotency as q
from server.db.unit import Database, UnitOfWork
from server.errors import Conflict, UnprocessableContent

TTL_SECONDS = 24 * 3600
LEASE_SECONDS = 60
_CLAIM_ATTEMPTS = 3
_NONCE_BYTES = 12
_IN_FLIGHT = "A request with this Idempotency-Key is still being processed"
_RETRY_SOON = {"Retry-After": "1"}


class KeyReused(UnprocessableContent):
    """The key was first used for another request (method, target or body)."""


class KeyInUse(Conflict):
    """The first request under this key is still running."""


class StoredResponse(msgspec.Struct, array_like=True):
    status: int
    media_type: str
    headers: dict[str, str]
    cookies: list[dict[str, object]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request holds while it runs."""

    id: bytes
    token: uuid.UUID
    seal: bytes


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request under a caller's key: its row id, its fingerprint and its sealing key."""

    id: bytes
    fingerprint: bytes
    seal: bytes

    @classmethod
    def of(cls, scope: str, key: str, method: str, target: str, body: bytes) -> KeyedRequest:
        secret = hashlib.blake2b(
            scope.encode() + b"\0" + key.encode(), digest_size=64, person=b"idempotency-key"
        ).digest()
        fingerprint = hashlib.blake2b(key=secret, digest_size=32, person=b"idempotency-fp")
        fingerprint.update(method.encode() + b"\0" + target.encode() + b"\0")
        fingerprint.update(body)
        return cls(
            id=hashlib.blake2b(secret, digest_size=32, person=b"idempotency-id").digest(),
            fingerprint=fingerprint.digest(),
            seal=hashlib.blake2b(secret, digest_size=32, person=b"idempotency-seal").digest(),
        )


class _Row(msgspec.Struct):
    fingerprint: bytes
    status: int | None
    response: bytes | None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(StoredResponse)


def _seal(key: bytes, row_id: bytes, response: StoredResponse) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, _encoder.encode(response), row_id)


def _open(key: bytes, row_id: bytes, sealed: bytes) -> StoredResponse:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return _decoder.decode(AESGCM(key).decrypt(nonce, ciphertext, row_id))


class IdempotencyKeys:
    """Claims, completes and releases keys; see the module docstring."""

    def __init__(
        self,
        database: Database,
        *,
        ttl_seconds: int = TTL_SECONDS,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self._database = database
        self.ttl_seconds = ttl_seconds
        self.lease_seconds = lease_seconds

    async def claim(self, request: KeyedRequest) -> Claim | StoredResponse:
        """Hold the key for this request, or the first request's stored response.

        Raises KeyReused when the key was used for another request, KeyInUse while the
        first one runs.
        """
        token = uuid.uuid4()
        params = {
            "id": request.id,
            "fingerprint": request.fingerprint,
            "token": token,
            "lease": self.lease_seconds,
            "ttl": self.ttl_seconds,
        }
        for _ in range(_CLAIM_ATTEMPTS):
            async with self._database.unit() as uow:
                if await uow.value(q.CLAIM, params) == token:
                    return Claim(request.id, token, request.seal)
                row = await uow.one(q.GET, {"id": request.id}, _Row)
            if row is None:
                continue  # released or expired since the claim looked: claim again
            if row.fingerprint != request.fingerprint:
                raise KeyReused("This Idempotency-Key was used for another request")
            if row.response is None:
                raise KeyInUse(_IN_FLIGHT, headers=_RETRY_SOON)
            try:
                return _open(request.seal, request.id, row.response)
            except InvalidTag:
                raise KeyReused("This Idempotency-Key was used for another request") from None
        raise KeyInUse(_IN_FLIGHT, headers=_RETRY_SOON)

    async def complete(self, uow: UnitOfWork, claim: Claim, response: StoredResponse) -> None:
        """Store the response in the request's unit, so it commits with the request's write."""
        stored = await uow.execute(
            q.COMPLETE,
            {
                "id": claim.id,
                "token": claim.token,
                "status": response.status,
                "response": _seal(claim.seal, claim.id, response),
            },
        )
        if stored != 1:
            # Our lease ran out and a retry took the key over: undo this request's write.
            raise KeyInUse("This request outlived its Idempotency-Key lease; retry it")

    async def release(self, claim: Claim) -> None:
        """Give the key up, unless its response is stored: a retry then runs afresh."""
        async with self._database.unit() as uow:
            await uow.execute(q.RELEASE, {"id": claim.id, "token": claim.token})
