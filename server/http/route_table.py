"""The app's route table as an operator reads it: each path, its methods and its guard."""

from __future__ import annotations

from typing import Any, cast

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from schemas.system import AccessKind, RouteGuard, RouteInfo
from server.http.access import rule_of

_IMPLICIT = frozenset({"HEAD", "OPTIONS"})


def guard_of(opt: dict[str, Any]) -> RouteGuard:
    """The access rule a route declares in its `opt` (`none`: refused to everyone)."""
    kind = cast(AccessKind | None, rule_of(opt))
    rate_limit = opt.get("rate_limit")
    limit = "off" if rate_limit is False else (str(rate_limit) if rate_limit else None)
    if kind == "permission":
        return RouteGuard(access=kind, permission=str(opt["permission"]), rate_limit=limit)
    if kind == "min_role":
        return RouteGuard(access=kind, min_role=str(opt["min_role"]), rate_limit=limit)
    if kind == "roles":
        return RouteGuard(access=kind, roles=sorted(map(str, opt["roles"])), rate_limit=limit)
    return RouteGuard(access=kind or "none", rate_limit=limit)


def route_table(app: Litestar) -> list[RouteInfo]:
    """Every HTTP handler of the app, by path then method; the schema routes included."""
    found: list[RouteInfo] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            declared = {str(method) for method in handler.http_methods}
            methods = sorted(declared - _IMPLICIT) or sorted(declared)
            found.append(
                RouteInfo(
                    path=route.path,
                    methods=methods,
                    handler=handler.handler_name,
                    guard=guard_of(handler.opt),
                )
            )
    found.sort(key=lambda r: (r.path, r.methods))
    return found
