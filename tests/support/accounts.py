"""Helpers that make accounts through the public API, as a client would."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.live_server import ROOT

GOOD_PASSWORD = "correct horse battery staple 42"


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.test"


async def register(
    http: httpx.AsyncClient, *, email: str | None = None, password: str = GOOD_PASSWORD
) -> Account:
    email = email or unique_email()
    response = await http.post(
        "/api/auth/register",
        json={"email": email, "password": password, "firstName": "Ada", "lastName": "Lovelace"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return Account(email, password, body["user"]["id"], body["token"], body["refreshToken"])


async def login(http: httpx.AsyncClient, email: str, password: str = GOOD_PASSWORD) -> Account:
    response = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return Account(email, password, body["user"]["id"], body["token"], body["refreshToken"])


def create_user_cli(
    env: dict[str, str], *, email: str, role: str, password: str = GOOD_PASSWORD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "create-user",
            "--email",
            email,
            "--first-name",
            "Grace",
            "--last-name",
            "Hopper",
            "--role",
            role,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
