"""Password policy (OWASP ASVS 5, NIST SP 800-63B) and argon2id hashing off the event loop.

Every password is NFKC-normalised before it is measured, compared or hashed, so
the same characters typed on different keyboards give the same hash.
"""

from __future__ import annotations

import functools
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from server.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MIN_CONTEXT_WORD_LENGTH = 4

T = TypeVar("T")

_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


class PasswordPolicyError(ValueError):
    """A new password breaks the policy; `reasons` lists every rule it breaks."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8")
    return frozenset(
        _normalize(line).casefold()
        for line in text.splitlines()
        if line and line != "#" and not line.startswith("# ")
    )


def _context_words(context: Sequence[str]) -> Iterator[str]:
    for word in context:
        folded = _normalize(word).strip().casefold()
        local_part, at, _domain = folded.partition("@")
        for candidate in (folded, local_part) if at else (folded,):
            if len(candidate) >= MIN_CONTEXT_WORD_LENGTH:
                yield candidate


def check_password_policy(password: str, *, context: Sequence[str] = ()) -> None:
    """Raise PasswordPolicyError unless `password` may be chosen as a new password.

    `context` holds words the password must not contain, such as the user's
    email address and names; words shorter than MIN_CONTEXT_WORD_LENGTH are
    ignored. Length is counted in code points; there are no composition rules, but a
    password must hold something other than spaces and no control characters.
    """
    normalized = _normalize(password)
    folded = normalized.casefold()
    reasons: list[str] = []
    if len(normalized) < MIN_PASSWORD_LENGTH:
        reasons.append(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(normalized) > MAX_PASSWORD_LENGTH:
        reasons.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    if normalized and not normalized.strip():
        reasons.append("must contain a character other than spaces")
    if any(unicodedata.category(char) == "Cc" for char in normalized):
        reasons.append("must not contain control characters")
    if folded in _common_passwords():
        reasons.append("is too common: it appears in lists of breached passwords")
    if any(word in folded for word in _context_words(context)):
        reasons.append("must not contain your name or email address")
    if reasons:
        raise PasswordPolicyError(reasons)


@dataclass(frozen=True)
class Argon2Settings:
    """argon2id cost parameters; the defaults are OWASP's m=19 MiB, t=2, p=1."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1


class HashQueueFull(Exception):
    """`queue_max` hashes already wait for a thread: the caller should come back later."""


class PasswordHasher:
    """argon2id hashing and verifying in worker threads, at most `max_concurrency` at once.

    The bound keeps a burst of logins from holding more than
    max_concurrency * memory_kib of memory, and the threads keep the event
    loop free. At most `queue_max` calls wait for a thread; past that a call
    raises `HashQueueFull` at once instead of queueing for seconds. A waiting
    call that is cancelled (its client went away) leaves the queue and its hash
    never starts. Construct it once at startup: it computes a dummy hash then.
    """

    def __init__(
        self, settings: Argon2Settings, *, max_concurrency: int, queue_max: int = 64
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if queue_max < 0:
            raise ValueError("queue_max must not be negative")
        self.settings = settings
        self._argon2 = argon2.PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_kib,
            parallelism=settings.parallelism,
            type=argon2.Type.ID,
        )
        self._max_concurrency = max_concurrency
        self._queue_max = queue_max
        self._queued = 0
        self._limiter: anyio.CapacityLimiter | None = None
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    def _thread_limiter(self) -> anyio.CapacityLimiter:
        # anyio binds a limiter to the running event loop, so it is made on first use.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_concurrency)
        return self._limiter

    @property
    def queued(self) -> int:
        """Calls waiting for a thread."""
        return self._queued

    async def hash(self, password: str) -> str:
        """The encoded argon2id hash of `password`, with a fresh salt."""
        return await self._in_thread(self._argon2.hash, _normalize(password))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` matches `stored_hash`; False for a malformed hash too."""
        return await self._in_thread(self._verify_in_thread, stored_hash, _normalize(password))

    async def _in_thread(self, work: Callable[..., T], *args: str) -> T:
        limiter = self._thread_limiter()
        try:
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            if self._queued >= self._queue_max:
                raise HashQueueFull(f"{self._queued} password hashes already wait") from None
            self._queued += 1
            try:
                await limiter.acquire()
            finally:
                self._queued -= 1
        try:
            # Shielded (anyio's default): the token is held until the thread's work ends.
            return await anyio.to_thread.run_sync(work, *args)
        finally:
            limiter.release()

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verify, so an unknown account answers as slowly as a known one."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether `stored_hash` was made with other parameters than the current ones."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify_in_thread(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def password_hasher(settings: Settings, *, max_concurrency: int) -> PasswordHasher:
    """The hasher with the argon2 costs `settings` names."""
    return PasswordHasher(
        Argon2Settings(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        ),
        max_concurrency=max_concurrency,
        queue_max=settings.hash_queue_max,
    )
