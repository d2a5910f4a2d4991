"""Password policy rules and argon2id hashing through a bounded thread limiter."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.security.passwords import (
    MAX_PASSWORD_LENGTH,
    Argon2Settings,
    HashQueueFull,
    PasswordHasher,
    PasswordPolicyError,
    check_password_policy,
)
from tests.support.waiting import eventually

FAST = Argon2Settings(memory_kib=1024, time_cost=1, parallelism=1)
STRONGER = Argon2Settings(memory_kib=2048, time_cost=1, parallelism=1)


def policy_reasons(password: str, context: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(PasswordPolicyError) as caught:
        check_password_policy(password, context=context)
    return caught.value.reasons


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST, max_concurrency=2)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Tr0ub4dor&3 in winter",
        "mañana-el-cóndor-vuela",
        "8chars!x",
    ],
)
def test_policy_accepts_uncommon_passwords(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize("password", ["", "short", "seven77"])
def test_policy_rejects_fewer_than_eight_characters(password: str) -> None:
    assert policy_reasons(password) == ["must be at least 8 characters long"]


@pytest.mark.parametrize(
    "password",
    [
        "password123",
        "qwertyuiop",
        "Password123",
        "P@ssw0rd",
        "iloveyou",
        "QWERTY2024",
        "sevenp123",
        "########",
    ],
)
def test_policy_rejects_common_passwords_ignoring_case(password: str) -> None:
    assert policy_reasons(password) == ["is too common: it appears in lists of breached passwords"]


@pytest.mark.parametrize("length", [64, 100, 128, MAX_PASSWORD_LENGTH])
def test_policy_accepts_long_passwords(length: int) -> None:
    check_password_policy(("a long walk to the lighthouse at dawn; " * 30)[:length])


def test_policy_rejects_passwords_beyond_the_maximum() -> None:
    assert policy_reasons("x7" * MAX_PASSWORD_LENGTH) == [
        f"must be at most {MAX_PASSWORD_LENGTH} characters long"
    ]


def test_policy_counts_code_points_not_bytes() -> None:
    check_password_policy("😀🐍🌍🚀🎉🔥💡🧩")
    assert len("日本語のパス".encode()) > 8
    assert policy_reasons("日本語のパス") == ["must be at least 8 characters long"]


def test_policy_counts_after_nfkc_normalisation() -> None:
    # Eight code points as typed, seven once each "e" + combining acute composes to "é".
    assert policy_reasons("e\u0301e\u0301e\u0301e\u0301") == ["must be at least 8 characters long"]
    fullwidth_password = "".join(chr(ord(char) + 0xFEE0) for char in "password")
    assert policy_reasons(fullwidth_password) == [
        "is too common: it appears in lists of breached passwords"
    ]


def test_policy_rejects_context_words_and_the_email_local_part() -> None:
    context = ("alice.smith@example.com", "Alice", "Smith")
    for password in ("ALICE-in-the-garden", "my alice.smith pass", "gardensmith99"):
        assert policy_reasons(password, context) == ["must not contain your name or email address"]


def test_policy_ignores_context_words_shorter_than_four_characters() -> None:
    check_password_policy("bobcat-by-the-lake", context=("Bo", "bob@x.io", "Li"))


def test_policy_lists_every_broken_rule() -> None:
    assert policy_reasons("anna", ("anna@example.com",)) == [
        "must be at least 8 characters long",
        "must not contain your name or email address",
    ]


def test_policy_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        check_password_policy("tiny")


async def test_hash_then_verify_roundtrip(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify(stored, "correct horse battery staple")
    assert not await hasher.verify(stored, "correct horse battery stapler")


async def test_each_hash_has_its_own_salt(hasher: PasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_long_passwords_are_not_truncated(hasher: PasswordHasher) -> None:
    first = "q" * 99 + "1"
    second = "q" * 99 + "2"
    stored = await hasher.hash(first)
    assert await hasher.verify(stored, first)
    assert not await hasher.verify(stored, second)


async def test_verify_matches_nfkc_equivalent_spellings(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("cafe\u0301 au lait")
    assert await hasher.verify(stored, "café au lait")


@pytest.mark.parametrize(
    "stored", ["", "garbage", "$argon2id$v=19$m=1024,t=1,p=1$bm9wZQ$bm9wZQ", "$2b$12$abc"]
)
async def test_verify_against_an_invalid_hash_is_false(hasher: PasswordHasher, stored: str) -> None:
    assert await hasher.verify(stored, "anything at all") is False


async def test_needs_rehash_when_stored_parameters_differ() -> None:
    weak = PasswordHasher(FAST, max_concurrency=1)
    strong = PasswordHasher(STRONGER, max_concurrency=1)
    stored = await weak.hash("correct horse battery staple")
    assert strong.needs_rehash(stored)
    assert not weak.needs_rehash(stored)
    assert not strong.needs_rehash(await strong.hash("correct horse battery staple"))
    assert strong.needs_rehash("not a hash")


async def test_verify_dummy_runs_a_real_verify_at_current_parameters(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    dummy_hash = hasher._dummy_hash
    assert not hasher.needs_rehash(dummy_hash)
    verified: list[tuple[str, str]] = []
    real_argon2 = hasher._argon2

    class RecordingArgon2:
        def verify(self, stored_hash: str, password: str) -> bool:
            verified.append((stored_hash, password))
            return real_argon2.verify(stored_hash, password)

    monkeypatch.setattr(hasher, "_argon2", RecordingArgon2())
    await hasher.verify_dummy("whatever was typed")
    assert verified == [(dummy_hash, "whatever was typed")]


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        PasswordHasher(FAST, max_concurrency=0)


class ConcurrencyProbe:
    """Stands in for argon2 and records how many calls overlap."""

    def __init__(self) -> None:
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.02)
        with self._lock:
            self.running -= 1
        return "$probe$" + password


async def test_no_more_than_max_concurrency_hashes_run_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = PasswordHasher(FAST, max_concurrency=2)
    probe = ConcurrencyProbe()
    monkeypatch.setattr(hasher, "_argon2", probe)
    async with anyio.create_task_group() as tg:
        for number in range(8):
            tg.start_soon(hasher.hash, f"password number {number}")
    assert probe.most_running == 2


async def test_hashing_leaves_the_event_loop_free() -> None:
    hasher = PasswordHasher(Argon2Settings(memory_kib=16384, time_cost=3), max_concurrency=1)
    ticks = 0

    async def tick_until_cancelled() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick_until_cancelled)
        await hasher.hash("correct horse battery staple")
        tg.cancel_scope.cancel()
    assert ticks >= 3


@settings(max_examples=25, deadline=None)
@given(password=st.text(min_size=8, max_size=80))
async def test_any_password_verifies_and_an_extended_one_does_not(password: str) -> None:
    hasher = PasswordHasher(Argon2Settings(memory_kib=64, time_cost=1), max_concurrency=1)
    stored = await hasher.hash(password)
    assert await hasher.verify(stored, password)
    assert not await hasher.verify(stored, password + "x")


@pytest.mark.parametrize("password", [" " * 16, "\u3000" * 10, " \u00a0" * 8, "\t" * 12])
def test_whitespace_only_passwords_are_refused(password: str) -> None:
    assert "must contain a character other than spaces" in policy_reasons(password)


@pytest.mark.parametrize("password", ["correct horse\x00battery", "tab\tinside the password"])
def test_control_characters_in_new_passwords_are_refused(password: str) -> None:
    assert policy_reasons(password) == ["must not contain control characters"]


def test_spaces_between_words_are_fine() -> None:
    check_password_policy("  correct horse battery staple  ")


class BlockingArgon2:
    """Stands in for argon2: each call records its password, then waits to be released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()

    def hash(self, password: str) -> str:
        self.started.append(password)
        self.release.wait(10)
        return "$blocked$" + password


async def test_a_full_queue_refuses_at_once_and_frees_as_hashes_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = PasswordHasher(FAST, max_concurrency=1, queue_max=2)
    blocking = BlockingArgon2()
    monkeypatch.setattr(hasher, "_argon2", blocking)
    async with anyio.create_task_group() as tg:
        for number in range(3):
            tg.start_soon(hasher.hash, f"password {number}")
        await eventually(
            lambda: blocking.started == ["password 0"] and hasher.queued == 2, within=5
        )
        started = anyio.current_time()
        for _ in range(50):
            with pytest.raises(HashQueueFull):
                await hasher.hash("one too many")
        assert anyio.current_time() - started < 0.5
        blocking.release.set()
    assert blocking.started == ["password 0", "password 1", "password 2"]
    assert hasher.queued == 0
    assert await hasher.hash("later") == "$blocked$later"


async def test_a_waiting_hash_whose_caller_is_cancelled_never_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = PasswordHasher(FAST, max_concurrency=1, queue_max=100)
    blocking = BlockingArgon2()
    monkeypatch.setattr(hasher, "_argon2", blocking)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hasher.hash, "running")
        await eventually(lambda: blocking.started == ["running"], within=5)
        with anyio.CancelScope() as gone:
            async with anyio.create_task_group() as waiters:
                for number in range(20):
                    waiters.start_soon(hasher.hash, f"abandoned {number}")
                await eventually(lambda: hasher.queued == 20, within=5)
                gone.cancel()
        assert hasher.queued == 0
        blocking.release.set()
    assert await hasher.hash("next") == "$blocked$next"
    assert blocking.started == ["running", "next"]


def test_queue_max_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="queue_max"):
        PasswordHasher(FAST, max_concurrency=1, queue_max=-1)
