"""The client's address, believing X-Forwarded-For only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from litestar.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted_proxies:
        return peer
    networks = parse_networks(trusted_proxies)
    if not _trusted(peer, networks):
        return peer
    # Several X-Forwarded-For lines are one list, in order (RFC 9110 5.3): a proxy that adds a
    # line of its own rather than appending to the one it received still names its client last.
    hops = [
        part.strip()
        for name, value in scope["headers"]
        if name == b"x-forwarded-for"
        for part in value.decode("latin-1").split(",")
        if part.strip()
    ]
    # Walk from the nearest hop outwards; the first address not a trusted proxy is the client.
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return peer
