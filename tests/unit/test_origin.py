"""Which origins a cookie-authenticated write may come from."""

from __future__ import annotations

import pytest

from server.http.origin import DEVELOPMENT_ORIGINS, OriginCheck, cors_origins, parse_origin
from server.settings import load_settings

CHECK = OriginCheck(["https://app.example.test", "http://localhost:3000", "*"])


@pytest.mark.parametrize(
    ("origin", "referer", "host"),
    [
        ("https://api.example.test", None, "api.example.test"),
        ("https://API.example.test:443", None, "api.example.test"),
        ("http://127.0.0.1:8000", None, "127.0.0.1:8000"),
        ("http://[::1]:8000", None, "[::1]:8000"),
        (None, "https://api.example.test/some/page?x=1", "api.example.test"),
        ("https://app.example.test", None, "api.example.test"),
        ("http://localhost:3000", None, None),
        (None, "https://app.example.test/", "api.example.test"),
    ],
)
def test_this_site_and_allowed_origins_are_admitted(
    origin: str | None, referer: str | None, host: str | None
) -> None:
    assert CHECK.admits(origin, referer, host)


@pytest.mark.parametrize(
    ("origin", "referer", "host"),
    [
        ("https://evil.example", None, "api.example.test"),
        ("https://evil.example", "https://api.example.test/", "api.example.test"),
        ("null", None, "api.example.test"),
        (None, None, "api.example.test"),
        ("https://api.example.test:8443", None, "api.example.test"),
        ("http://api.example.test", None, "api.example.test:443"),
        ("https://api.example.test.evil.example", None, "api.example.test"),
        ("https://app.example.test:444", None, "api.example.test"),
        ("ftp://api.example.test", None, "api.example.test"),
        ("https://", None, "api.example.test"),
        ("https://api.example.test:99999", None, "api.example.test"),
        ("https://api.example.test", None, "api.example.test:notaport"),
    ],
)
def test_other_sites_and_unusable_values_are_refused(
    origin: str | None, referer: str | None, host: str | None
) -> None:
    assert not CHECK.admits(origin, referer, host)


def test_the_wildcard_admits_no_one() -> None:
    assert not OriginCheck(["*"]).admits("https://any.example", None, "api.example.test")


def test_the_allow_list_is_the_cors_one() -> None:
    assert cors_origins(load_settings({})) == DEVELOPMENT_ORIGINS
    assert cors_origins(load_settings({"SEVENP_ENV": "test"})) == ()
    configured = load_settings(
        {"SEVENP_ENV": "test", "CORS_ORIGINS": "https://a.test, https://b.test"}
    )
    assert cors_origins(configured) == ("https://a.test", "https://b.test")
    assert parse_origin("https://A.test") == ("https", "a.test", 443)
