"""Cross-site request forgery: a write authenticated by the access cookie must come from a
page of this site or of an allowed CORS origin.

Browsers attach cookies to requests that other sites' pages start; they also say where such
a request comes from, in `Origin` (or at least `Referer`). So a POST, PUT, PATCH or DELETE
that authenticates with the cookie rather than an `Authorization` header is refused (403)
unless its `Origin`, else its `Referer`'s origin, is the request's own (its `Host`) or one of
`CORS_ORIGINS`. A request with neither is refused too. The wildcard origin admits nothing
here. Bearer requests are untouched: no browser adds that header on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from server.errors import Forbidden
from server.settings import Environment, Settings

DEVELOPMENT_ORIGINS = ("http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:3000")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]
"""scheme, host, port: ports spelled out, names in lower case."""


def cors_origins(settings: Settings) -> tuple[str, ...]:
    """The configured allow-list; the local development servers' origins when unset in
    development."""
    if not settings.cors_origins and settings.sevenp_env is Environment.DEVELOPMENT:
        return DEVELOPMENT_ORIGINS
    return settings.cors_origins


def parse_origin(text: str) -> Origin | None:
    """The origin of a URL (or of an `Origin` value); None for `null` and anything unusable."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _host_matches(origin: Origin, host: str) -> bool:
    """Whether `origin` names the `Host` the request was sent to (on the origin's scheme)."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname:
        return False
    return (parts.hostname.lower(), port or _DEFAULT_PORTS[origin[0]]) == origin[1:]


class OriginCheck:
    def __init__(self, allowed_origins: Iterable[str]) -> None:
        self._allowed = frozenset(
            found for found in (parse_origin(o) for o in allowed_origins if o != "*") if found
        )

    def admits(self, origin: str | None, referer: str | None, host: str | None) -> bool:
        source = origin if origin is not None else referer
        parsed = None if source is None else parse_origin(source)
        if parsed is None:
            return False
        return parsed in self._allowed or (host is not None and _host_matches(parsed, host))

    def check(self, headers: dict[bytes, bytes]) -> None:
        """Forbidden unless the request comes from this site or an allowed origin."""

        def text(name: bytes) -> str | None:
            value = headers.get(name)
            return None if value is None else value.decode("latin-1")

        if not self.admits(text(b"origin"), text(b"referer"), text(b"host")):
            raise Forbidden(
                "A cookie-authenticated change must come from this site or an allowed origin"
                " (Origin or Referer); send the token as a Bearer header otherwise"
            )
