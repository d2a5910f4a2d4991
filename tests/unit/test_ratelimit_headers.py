"""RateLimit headers parse as RFC 8941 Lists per draft-ietf-httpapi-ratelimit-headers-08."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.ratelimit.actor import RateLimitActor
from actors.ratelimit.gcra import Decision, GcraStore
from actors.ratelimit.headers import rate_limit_headers, remaining_item, retry_after_header
from actors.ratelimit.policy import API, AUTH, GENERAL, RatePolicy
from server.http.limits import Outcome, RateLimits, tightest_field

BareItem = int | float | str | bool
Item = tuple[BareItem, dict[str, BareItem]]

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")


class _Parser:
    """RFC 8941 section 4.2 List parsing, without Inner Lists and Byte Sequences."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"{what} at {self.pos} in {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def parse_list(self) -> list[Item]:
        self.skip(" ")
        members: list[Item] = []
        while self.pos < len(self.text):
            members.append(self.parse_item())
            self.skip(" \t")
            if self.pos == len(self.text):
                return members
            if self.peek() != ",":
                raise self.error("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):
                raise self.error("trailing ','")
        return members

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def parse_item(self) -> Item:
        return self.parse_bare_item(), self.parse_parameters()

    def parse_parameters(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(_KEY, "key")
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.parse_bare_item()
            params[key] = value
        return params

    def parse_bare_item(self) -> BareItem:
        char = self.peek()
        if char == '"':
            return self.parse_string()
        if char == "?":
            self.pos += 1
            flag = self.peek()
            if flag not in ("0", "1"):
                raise self.error("bad boolean")
            self.pos += 1
            return flag == "1"
        if char == "-" or char.isdigit():
            number = self.match(_NUMBER, "number")
            return float(number) if "." in number else int(number)
        if char.isalpha() or char == "*":
            return self.match(_TOKEN, "token")
        raise self.error("expected a bare item")

    def parse_string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise self.error("bad escape")
                out.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise self.error("non-printable character in string")
            else:
                out.append(char)
        raise self.error("unterminated string")

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise self.error(f"expected {what}")
        self.pos = found.end()
        return found.group()


def parse_list(text: str) -> list[Item]:
    return _Parser(text).parse_list()


def test_parser_reads_the_drafts_examples() -> None:
    assert parse_list('"burst";q=100;w=60,"daily";q=1000;w=86400') == [
        ("burst", {"q": 100, "w": 60}),
        ("daily", {"q": 1000, "w": 86400}),
    ]
    assert parse_list('"default";r=50;t=30') == [("default", {"r": 50, "t": 30})]
    for bad in ('"open', "default;r=1,", '"a";R=1', '"a";r=1;;', '"a" "b"'):
        with pytest.raises(ValueError, match=" at "):
            parse_list(bad)


def test_general_policy_headers() -> None:
    decision = Decision(True, 1000, 997, 11.2, 0.0)
    headers = rate_limit_headers(GENERAL, decision)
    assert headers == {
        "RateLimit-Policy": '"general";q=1000;w=900',
        "RateLimit": '"general";r=997;t=12',
    }
    assert parse_list(headers["RateLimit-Policy"]) == [("general", {"q": 1000, "w": 900})]
    assert parse_list(headers["RateLimit"]) == [("general", {"r": 997, "t": 12})]


def test_limited_response_t_matches_retry_after() -> None:
    decision = Decision(False, 5, 0, 899.3, 179.2)
    headers = rate_limit_headers(AUTH, decision)
    assert retry_after_header(decision) == "180"
    assert parse_list(headers["RateLimit"]) == [("auth", {"r": 0, "t": 180})]


def test_retry_after_is_at_least_one_second_when_limited() -> None:
    assert retry_after_header(Decision(False, 100, 0, 60.0, 0.001)) == "1"
    assert retry_after_header(Decision(False, 100, 0, 60.0, 2.0)) == "2"
    assert retry_after_header(Decision(True, 100, 3, 60.0, 0.0)) == "0"


def test_several_policies_join_into_one_list() -> None:
    first = rate_limit_headers(GENERAL, Decision(True, 1000, 999, 0.9, 0.0))
    second = rate_limit_headers(API, Decision(True, 100, 99, 0.6, 0.0))
    joined = ", ".join([first["RateLimit"], second["RateLimit"]])
    assert parse_list(joined) == [("general", {"r": 999, "t": 1}), ("api", {"r": 99, "t": 1})]


def test_policy_names_are_escaped_as_sf_strings() -> None:
    policy = RatePolicy('we"ird\\name', 10, 60)
    headers = rate_limit_headers(policy, Decision(True, 10, 9, 6.0, 0.0))
    assert headers["RateLimit-Policy"] == '"we\\"ird\\\\name";q=10;w=60'
    assert parse_list(headers["RateLimit-Policy"])[0][0] == 'we"ird\\name'


def test_fractional_windows_round_up_to_whole_seconds() -> None:
    headers = rate_limit_headers(RatePolicy("tiny", 3, 0.5), Decision(True, 3, 2, 0.17, 0.0))
    assert parse_list(headers["RateLimit-Policy"]) == [("tiny", {"q": 3, "w": 1})]


def test_non_ascii_policy_names_are_refused() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        RatePolicy("général", 10, 60)


names = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


@given(
    name=names,
    limit=st.integers(min_value=1, max_value=10**6),
    window=st.floats(min_value=1, max_value=10**6),
    allowed=st.booleans(),
    remaining_share=st.floats(min_value=0, max_value=1),
    reset_after=st.floats(min_value=0, max_value=10**6),
    retry_after=st.floats(min_value=0, max_value=10**6),
)
def test_headers_always_parse_per_the_draft(
    name: str,
    limit: int,
    window: float,
    allowed: bool,
    remaining_share: float,
    reset_after: float,
    retry_after: float,
) -> None:
    policy = RatePolicy(name, limit, window)
    remaining = math.floor(remaining_share * limit)
    decision = Decision(allowed, limit, remaining, reset_after, 0.0 if allowed else retry_after)
    headers = rate_limit_headers(policy, decision)
    [(policy_name, policy_params)] = parse_list(headers["RateLimit-Policy"])
    [(limit_name, limit_params)] = parse_list(headers["RateLimit"])
    assert policy_name == limit_name == name
    assert policy_params == {"q": limit, "w": math.ceil(window)}
    expected_t = math.ceil(reset_after) if allowed else max(1, math.ceil(retry_after))
    assert limit_params == {"r": remaining, "t": expected_t}
    if not allowed:
        assert retry_after_header(decision) == str(expected_t)


async def test_route_fields_match_the_formatted_ones() -> None:
    """Over thousands of distinct values, a route's RateLimit field reads as `remaining_item`
    formats the tighter of its two decisions."""
    now = [0.0]
    general = RatePolicy("general", 6000, 3000)
    api = RatePolicy("api", 5, 1)
    actor = RateLimitActor(redis=None, instance_id="test", clock=lambda: now[0])
    limits = RateLimits(actor, {"general": general, "api": api}, ())
    plan = limits.plan(_Handler(), True)
    assert plan is not None
    reference = GcraStore(clock=lambda: now[0])
    chosen, items = set(), set()
    for i in range(9000):
        now[0] = i * 0.2
        user = f"user{i % 3}"
        first, second = reference.check(general, "ip"), reference.check(api, user)
        policy, decision = (
            (general, first)
            if first.reset_after / general.window_seconds >= second.reset_after / api.window_seconds
            else (api, second)
        )
        chosen.add(policy.name)
        expected = remaining_item(policy, decision).encode()
        items.add(expected)
        outcomes: list[Outcome] = []
        await limits.enforce(plan, plan.by_address, "ip", outcomes)
        await limits.enforce(plan, (api,), user, outcomes)
        assert tightest_field(outcomes) == (b"ratelimit", expected)
    assert chosen == {"general", "api"}
    assert len(items) > 4096


class _Handler:
    def __init__(self) -> None:
        self.opt: dict[str, Any] = {}
