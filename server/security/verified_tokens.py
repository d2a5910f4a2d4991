"""A bounded memory of access tokens already verified, so a token's signature is checked once.

A client sends the same access token with every request for its lifetime. Its string is
exactly what was signed, so once it verified it verifies again until `exp`: remembering
the claims by the string saves the decode and the HMAC on every later request. Expiry is
still checked on every use, and revocation is not cached here at all (the session actor
answers that on every request). Entries leave at expiry or, past `max_entries`, oldest first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.security.tokens import AccessClaims, ExpiredToken, TokenIssuer


class VerifiedTokens:
    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._max_entries = max_entries
        self._clock = clock
        self._claims: dict[str, AccessClaims] = {}
        self.hits = 0

    def verify(self, token: str) -> AccessClaims:
        """The token's claims: from memory when seen before, else verified by the issuer."""
        claims = self._claims.get(token)
        if claims is not None:
            if self._clock() < claims.exp:
                self.hits += 1
                return claims
            del self._claims[token]
            raise ExpiredToken("token expired")
        claims = self._issuer.verify_access(token)
        if len(self._claims) >= self._max_entries:
            self._evict()
        self._claims[token] = claims
        return claims

    def __len__(self) -> int:
        return len(self._claims)

    def _evict(self) -> None:
        now = self._clock()
        expired = [token for token, claims in self._claims.items() if claims.exp <= now]
        for token in expired:
            del self._claims[token]
        while len(self._claims) >= self._max_entries:
            del self._claims[next(iter(self._claims))]
