"""Settings decode once, fail fast naming the variable, refuse insecure production."""

from __future__ import annotations

import re

import msgspec
import pytest

from server.settings import Environment, Settings, SettingsError, load_settings
from tests.support.live_server import ROOT

SECRET = "s" * 40


def test_defaults_serve_development_on_port_8000() -> None:
    settings = load_settings({})
    assert settings.sevenp_env is Environment.DEVELOPMENT
    assert settings.port == 8000
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.backpressure > 10_000


def test_values_are_decoded_from_strings() -> None:
    settings = load_settings(
        {
            "PORT": "9001",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "DRAIN_SECONDS": "2.5",
            "REDIS_URL": "redis://x",
            "WORKERS": "4",
        }
    )
    assert settings.port == 9001
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.drain_seconds == 2.5
    assert settings.workers == 4


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"SEVENP_ENV": "staging"}, "SEVENP_ENV"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"WORKERS": "2"}, "WORKERS"),
        ({"DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS"),
    ],
)
def test_a_bad_value_names_its_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.startswith(f"invalid {variable}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "JWT_SECRET"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"JWT_SECRET": SECRET, "CORS_ORIGINS": "*", "MAIL_URL": "smtp://m:25"}, "CORS_ORIGINS"),
        ({"JWT_SECRET": SECRET}, "MAIL_URL"),
    ],
)
def test_production_refuses_insecure_defaults(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^invalid {variable}"):
        load_settings({"SEVENP_ENV": "production", **environ})


def test_production_accepts_a_secure_configuration() -> None:
    settings = load_settings(
        {
            "SEVENP_ENV": "production",
            "JWT_SECRET": SECRET,
            "MAIL_URL": "smtp://mail:25",
            "CORS_ORIGINS": "https://app.example",
        }
    )
    assert settings.is_production


def _readme_variables() -> set[str]:
    """The variables named in the first column of the README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])}


def test_the_readme_lists_every_setting_and_nothing_else() -> None:
    fields = {field.name.upper() for field in msgspec.structs.fields(Settings)}
    assert _readme_variables() == fields


def test_http_accepts_only_the_modes_granian_serves() -> None:
    assert load_settings({"HTTP": "2"}).http == "2"
    with pytest.raises(SettingsError, match="HTTP"):
        load_settings({"HTTP": "3"})
