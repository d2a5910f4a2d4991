"""The Litestar app factory; Granian loads `server.app:create_app` with `--factory`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.types import ControllerRouterHandler

from server.errors import exception_handlers
from server.http.compression import CompressionWhenAsked
from server.http.gate import request_gate
from server.http.idempotency import Replayed, replay_response
from server.http.openapi_problems import document_problems
from server.http.response_fields import response_fields_hook
from server.http.strict_input import strict_input
from server.routes.analytics import AnalyticsController
from server.routes.auth import AuthController
from server.routes.course_members import EnrollmentsController, LessonsController
from server.routes.courses import CoursesController
from server.routes.dependencies import route_dependencies
from server.routes.health import HealthController, ProbeController
from server.routes.reviews import ReviewsController
from server.routes.users import UsersController
from server.runtime import Runtime, build_runtime
from server.settings import Environment, Settings, load_settings

DEVELOPMENT_ORIGINS = ("http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:3000")


def _cors(settings: Settings) -> CORSConfig | None:
    origins: Sequence[str] = settings.cors_origins
    if not origins and settings.sevenp_env is Environment.DEVELOPMENT:
        origins = DEVELOPMENT_ORIGINS
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_credentials="*" not in origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After", "Idempotent-Replayed"],
        max_age=600,
    )


def route_handlers() -> list[ControllerRouterHandler]:
    return [
        ProbeController,
        HealthController,
        AuthController,
        UsersController,
        CoursesController,
        EnrollmentsController,
        LessonsController,
        ReviewsController,
        AnalyticsController,
    ]


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    main_pid: int | None = None,
) -> Litestar:
    """The app; `main_pid` is the serving process to stop if supervision gives up."""
    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = runtime or build_runtime(settings, main_pid=main_pid)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with runtime.running():
            yield

    return Litestar(
        route_handlers=route_handlers(),
        lifespan=[lifespan],
        on_app_init=[strict_input, document_problems],
        dependencies=route_dependencies(runtime),
        middleware=[request_gate(runtime)],
        before_send=[response_fields_hook(runtime.rate_limits)],
        exception_handlers={
            **exception_handlers(expose_traces=settings.is_development),
            Replayed: replay_response,
        },
        cors_config=_cors(settings),
        compression_config=CompressionConfig(
            backend="brotli",
            brotli_gzip_fallback=True,
            minimum_size=1024,
            middleware_class=CompressionWhenAsked,
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="7P Education Platform API",
            version=version("sevenp"),
            render_plugins=[ScalarRenderPlugin()],
            openapi_router=Router(
                path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False
            ),
        ),
        debug=False,
    )
