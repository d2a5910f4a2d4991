"""What route handlers may ask for by name, provided by Litestar's dependency injection.

A handler declares `uow: UnitOfWork`, `identity: Identity`, `accounts: Accounts`, ... and
receives them (`idempotency: Idempotency` on POSTs that create something, see
`server.http.idempotency`); nothing else of the runtime is reachable from a route. `uow` is the
request's unit of work: it takes a connection only at its first statement, commits after
the handler returns and before the response is sent, and rolls back when the handler raises.
`reads` is a READ ONLY unit on the read replica when one serves this user's reads
(`server.db.replica`), else on the primary: for search, analytics and the gradebook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from server.db.unit import UnitOfWork
from server.http.access import IDENTITY_KEY, Identity, identity_of
from server.http.client import client_address
from server.http.idempotency import Idempotency, claim_for
from server.runtime import Runtime
from server.services.viewer import Viewer

_READS_ONLY = frozenset(("GET", "HEAD", "OPTIONS"))


def _constant(value: Any) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def _user_of(request: Request[Any, Any, Any]) -> str | None:
    identity = request.scope.get(IDENTITY_KEY)
    return identity.user_id if isinstance(identity, Identity) else None


async def _identity(request: Request[Any, Any, Any]) -> Identity:
    return identity_of(request)


def route_dependencies(runtime: Runtime) -> dict[str, Provide]:
    trusted_proxies = runtime.settings.trusted_proxies

    async def viewer(request: Request[Any, Any, Any]) -> Viewer:
        identity = identity_of(request)
        scope = request.scope
        address = client_address(scope, trusted_proxies)
        return Viewer(identity.user_id, identity.role, address)

    async def unit_of_work(request: Request[Any, Any, Any]) -> AsyncIterator[UnitOfWork]:
        writer = None if request.method in _READS_ONLY else _user_of(request)
        async with runtime.database.unit(writer=writer) as uow:
            yield uow

    async def reads(request: Request[Any, Any, Any]) -> AsyncIterator[UnitOfWork]:
        async with runtime.database.read_unit(_user_of(request)) as uow:
            yield uow

    async def idempotency(
        request: Request[Any, Any, Any], uow: NamedDependency[UnitOfWork]
    ) -> Idempotency:
        return await claim_for(
            request, uow, runtime.idempotency_keys, runtime.settings.trusted_proxies
        )

    return {
        "uow": Provide(unit_of_work),
        "reads": Provide(reads),
        "identity": Provide(_identity),
        "viewer": Provide(viewer),
        "idempotency": Provide(idempotency),
        "settings": _constant(runtime.settings),
        "telemetry": _constant(runtime.telemetry),
        "tokens": _constant(runtime.tokens),
        "accounts": _constant(runtime.accounts),
        "auth": _constant(runtime.auth),
        "health": _constant(runtime.health_reporter),
        "courses": _constant(runtime.courses),
        "lessons": _constant(runtime.lessons),
        "enrollments": _constant(runtime.enrollments),
        "reviews": _constant(runtime.reviews),
        "course_analytics": _constant(runtime.course_analytics),
        "assessments": _constant(runtime.assessments),
        "submissions": _constant(runtime.submissions),
        "grades": _constant(runtime.grades),
        "gradebooks": _constant(runtime.gradebooks),
        "analytics": _constant(runtime.analytics),
        "exports": _constant(runtime.exports),
        "cache": _constant(runtime.cache),
        "audit_log": _constant(runtime.audit_log),
        "system": _constant(runtime.system),
    }
