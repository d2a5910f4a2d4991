"""The Litestar app factory; Granian loads `server.app:create_app` with `--factory`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from server.errors import exception_handlers
from server.http.compression import CompressionWhenAsked
from server.http.docs import SwaggerUIPage
from server.http.gate import request_gate
from server.http.idempotency import Replayed, replay_response
from server.http.openapi_problems import document_problems
from server.http.origin import cors_origins
from server.http.response_fields import response_fields_hook
from server.http.strict_input import strict_input
from server.routes.analytics import AnalyticsController
from server.routes.assessments import (
    AssessmentsController,
    CourseAssessmentsController,
    SubmissionsController,
)
from server.routes.auth import AuthController
from server.routes.course_members import EnrollmentsController, LessonsController
from server.routes.courses import CoursesController
from server.routes.dependencies import route_dependencies
from server.routes.health import HealthController, ProbeController, SystemHealthController
from server.routes.metrics import metrics
from server.routes.reviews import ReviewsController
from server.routes.system import SystemController
from server.routes.users import UsersController
from server.runtime import Runtime, build_runtime
from server.settings import Settings, load_settings
from server.telemetry.logs import configure_logging


def _cors(settings: Settings) -> CORSConfig | None:
    origins: Sequence[str] = cors_origins(settings)
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
        SystemHealthController,
        AuthController,
        UsersController,
        CoursesController,
        EnrollmentsController,
        LessonsController,
        ReviewsController,
        CourseAssessmentsController,
        AssessmentsController,
        SubmissionsController,
        SystemController,
        metrics,
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
    configure_logging(settings)
    if runtime is None:
        runtime = build_runtime(settings, main_pid=main_pid)
        runtime.exit_when_overdue = True

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
            render_plugins=[SwaggerUIPage()],
            openapi_router=Router(
                path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False
            ),
        ),
        # Litestar's own lines go to the root handler of server/telemetry/logs.py, not to a
        # second handler and queue thread of its own.
        logging_config=LoggingConfig(
            configure_root_logger=False,
            handlers={"queue_listener": {"class": "logging.NullHandler"}},
            loggers={"litestar": {"level": "INFO", "propagate": True}},
        ),
        debug=False,
    )
