"""Telemetry in process: request spans with their SQL children, traceresponse, the trace id in
the request's log lines, and metrics whose labels are route templates, never raw paths."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server.app import create_app
from server.runtime import Runtime, build_runtime
from server.settings import load_settings
from server.telemetry.logs import JsonFormatter
from server.telemetry.setup import setup_telemetry
from tests.support.accounts import GOOD_PASSWORD, unique_email
from tests.support.live_server import RUN_REDIS_PREFIX, TEST_JWT_SECRET

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass
class InProcess:
    client: httpx.AsyncClient
    runtime: Runtime
    spans: InMemorySpanExporter
    access: io.StringIO


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The `sevenp.access` lines, formatted as they are written, in the request's context."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sevenp.access")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


@pytest.fixture
async def app(
    request: pytest.FixtureRequest,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    access_lines: io.StringIO,
) -> AsyncIterator[InProcess]:
    """An in-process app; a test may override settings with indirect parametrisation."""
    settings = load_settings(
        {
            "SEVENP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": RUN_REDIS_PREFIX,
            "JWT_SECRET": TEST_JWT_SECRET,
            "MAIL_URL": "console://",
            "RATE_LIMIT_ENABLED": "false",
            "ACCESS_LOG": "true",
            "ACCESS_LOG_SAMPLE": "1",
            "METRICS_DIR": str(tmp_path_factory.mktemp("metrics")),
            **getattr(request, "param", {}),
        }
    )
    spans = InMemorySpanExporter()
    telemetry = setup_telemetry(settings, "test", span_processors=[SimpleSpanProcessor(spans)])
    runtime = build_runtime(settings, telemetry=telemetry)
    application = create_app(settings, runtime)
    async with (
        application.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://in-process"
        ) as client,
    ):
        yield InProcess(client, runtime, spans, access_lines)


def _registration() -> dict[str, str]:
    return {
        "email": unique_email("traced"),
        "password": GOOD_PASSWORD,
        "firstName": "Ada",
        "lastName": "Lovelace",
    }


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_sampled_request_has_its_span_with_sql_children_and_its_trace_in_the_log(
    app: InProcess,
) -> None:
    response = await app.client.post(
        "/api/auth/register",
        json=_registration(),
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 201, response.text

    spans = app.spans.get_finished_spans()
    [server] = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.name == "POST /api/auth/register"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/auth/register"
    assert server.attributes["http.response.status_code"] == 201
    children = [
        span for span in spans if span.parent and span.parent.span_id == server.context.span_id
    ]
    sql = [
        span
        for span in children
        if span.attributes and span.attributes.get("db.system.name") == "postgresql"
    ]
    assert sql, [span.name for span in spans]
    assert all(span.name == span.attributes["db.query.summary"] for span in sql if span.attributes)
    assert all(span.kind is SpanKind.CLIENT for span in sql)

    assert response.headers["traceresponse"] == (
        f"00-{TRACE_ID}-{format(server.context.span_id, '016x')}-01"
    )
    [line] = [line for line in _lines(app.access) if line.get("route") == "/api/auth/register"]
    assert line["traceId"] == TRACE_ID
    assert line["status"] == 201
    assert line["level"] == "INFO"
    assert isinstance(line["requestId"], str)
    assert isinstance(line["durationMs"], float)


async def test_an_unsampled_parent_makes_no_span_but_keeps_its_trace_id(app: InProcess) -> None:
    response = await app.client.get(
        "/health/live", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}
    )
    assert response.status_code == 200
    assert app.spans.get_finished_spans() == ()
    assert response.headers["traceresponse"].startswith(f"00-{TRACE_ID}-")
    assert response.headers["traceresponse"].endswith("-00")
    [line] = [line for line in _lines(app.access) if line.get("route") == "/health/live"]
    assert line["traceId"] == TRACE_ID


async def test_a_request_without_parent_is_sampled_at_the_default_ratio_only(
    app: InProcess,
) -> None:
    for _ in range(20):
        assert (await app.client.get("/health/live")).status_code == 200
    assert len(app.spans.get_finished_spans()) < 20


async def test_a_malformed_traceparent_starts_a_new_trace(app: InProcess) -> None:
    response = await app.client.get(
        "/health/live", headers={"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"}
    )
    assert response.status_code == 200
    assert TRACE_ID not in response.headers.get("traceresponse", "")


async def test_the_log_line_names_the_user(app: InProcess) -> None:
    registered = await app.client.post("/api/auth/register", json=_registration())
    body = registered.json()
    me = await app.client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    [line] = [line for line in _lines(app.access) if line.get("route") == "/api/auth/me"]
    assert line["userId"] == body["user"]["id"]
    assert body["token"] not in app.access.getvalue()


async def test_metrics_are_labelled_by_route_template_whatever_the_ids(app: InProcess) -> None:
    registered = await app.client.post("/api/auth/register", json=_registration())
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
    ids = [str(uuid.uuid4()) for _ in range(40)]
    for course_id in ids:
        response = await app.client.get(f"/api/courses/{course_id}", headers=auth)
        assert response.status_code == 404
    scrape = await app.client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert not any(course_id in text for course_id in ids)
    routes = {
        line.split('http_route="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count")
    }
    assert "/api/courses/{course_id}" in routes
    assert all("{" in route or route.count("/") <= 3 for route in routes), routes
    assert len(app.runtime.telemetry.requests) <= 5
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count")
        and 'http_route="/api/courses/{course_id}"' in line
    )
    assert float(count.rsplit(" ", 1)[1]) == 40
    for name in (
        "db_client_operation_duration_seconds_bucket",
        "db_client_connection_count",
        "http_server_active_requests",
        "sevenp_actor_mailbox_depth",
        "sevenp_actor_restarts_total",
        "process_memory_usage_bytes",
        "process_cpu_time_seconds_total",
    ):
        assert f"\n{name}" in text, name
    assert 'db_query_summary="users.' in text or 'db_query_summary="auth.' in text


@pytest.mark.parametrize("app", [{"ACCESS_LOG_SAMPLE": "0"}], indirect=True)
async def test_unsampled_access_lines_keep_every_failure(app: InProcess) -> None:
    registered = await app.client.post("/api/auth/register", json=_registration())
    assert registered.status_code == 201
    refused = await app.client.get("/api/auth/me")
    assert refused.status_code == 401
    lines = _lines(app.access)
    assert [(line["route"], line["status"]) for line in lines] == [("/api/auth/me", 401)]
