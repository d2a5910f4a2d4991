"""The role x endpoint matrix, generated from the route table: deny by default, RBAC exact."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from server.app import create_app
from server.http.access import rule_of
from server.security.permissions import Permission, Role, has_permission, role_at_least
from server.settings import load_settings
from tests.support.accounts import GOOD_PASSWORD, login, register

_FRAMEWORK_PATHS = re.compile(r"^/schema")


def _app() -> Litestar:
    return create_app(load_settings({"DATABASE_URL": "postgresql://unused/none"}))


def _routes() -> list[tuple[str, str, HTTPRouteHandler]]:
    table: list[tuple[str, str, HTTPRouteHandler]] = []
    for route in _app().routes:
        if _FRAMEWORK_PATHS.match(route.path):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                table.append((method, route.path, handler))
    return table


ROUTES = _routes()


def test_every_route_declares_an_access_rule() -> None:
    missing = [f"{m} {p}" for m, p, h in ROUTES if rule_of(h.opt) is None]
    assert missing == []
    assert len(ROUTES) >= 25


def _allowed(role: Role, opt: dict[str, Any]) -> bool:
    kind = rule_of(opt)
    if kind in ("public", "auth"):
        return True
    if kind == "permission":
        return has_permission(role, Permission(opt["permission"]))
    if kind == "min_role":
        return role_at_least(role, Role(opt["min_role"]))
    if kind == "roles":
        return role in opt["roles"]
    return False


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def _token_for(http: httpx.AsyncClient, role: Role, emails: dict[Role, str]) -> str:
    if role is Role.STUDENT:
        return (await register(http)).token
    return (await login(http, emails[role], GOOD_PASSWORD)).token


@pytest.mark.parametrize("role", list(Role))
async def test_role_by_endpoint_matrix(
    http: httpx.AsyncClient, role: Role, admin_email: str, teacher_email: str
) -> None:
    emails = {Role.ADMIN: admin_email, Role.TEACHER: teacher_email}
    wrong: list[str] = []
    for method, path, handler in ROUTES:
        if handler.opt.get("public"):
            continue
        token = await _token_for(http, role, emails)
        response = await http.request(
            method, _concrete(path), headers={"Authorization": f"Bearer {token}"}, json={}
        )
        denied = response.status_code == 403
        if denied == _allowed(role, handler.opt) or response.status_code == 401:
            wrong.append(f"{role} {method} {path}: {response.status_code}")
    assert wrong == []


async def test_without_a_token_every_non_public_route_is_401(http: httpx.AsyncClient) -> None:
    for method, path, handler in ROUTES:
        if handler.opt.get("public"):
            continue
        response = await http.request(method, _concrete(path), json={})
        assert response.status_code == 401, f"{method} {path}"
