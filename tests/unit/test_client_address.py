"""Whose address a request is: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest

from server.http.client import client_address

PROXIES = ("127.0.0.1", "10.0.0.0/8")


def scope(peer: str, *forwarded: str) -> Any:
    return {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # An untrusted peer's header is ignored, whatever it says.
        ("203.0.113.9", ("198.51.100.1",), "203.0.113.9"),
        # The nearest untrusted hop is the client; addresses further out may be forged.
        ("127.0.0.1", ("192.0.2.66, 198.51.100.1",), "198.51.100.1"),
        ("127.0.0.1", ("198.51.100.1, 10.1.2.3",), "198.51.100.1"),
        # Two header lines are one list, in order: the last line is the nearest proxy's.
        ("127.0.0.1", ("192.0.2.66", "198.51.100.1"), "198.51.100.1"),
        ("127.0.0.1", ("198.51.100.1", "10.1.2.3"), "198.51.100.1"),
        # Only trusted hops, or none: the peer.
        ("127.0.0.1", ("10.1.2.3",), "127.0.0.1"),
        ("127.0.0.1", (), "127.0.0.1"),
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(
    peer: str, forwarded: tuple[str, ...], expected: str
) -> None:
    assert client_address(scope(peer, *forwarded), PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address(scope("127.0.0.1", "198.51.100.1"), ()) == "127.0.0.1"
