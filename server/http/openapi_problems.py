"""The OpenAPI document describes the errors: problem+json answers on every operation.

Registered once for the whole app (`on_app_init`): handler docstrings become operation
descriptions, their first line the summary, every operation lists the
problem+json statuses the server may answer it with, as the `Problem` schema, and every
operation whose route is not public requires the bearer access token (`BearerToken`).
What Litestar leaves out is said too: a 204 answer has no content, and a body that refuses
unknown fields (`ApiBody`) has `additionalProperties: false`.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)

from schemas.base import ApiBody
from server.errors import PROBLEM_JSON
from server.http.access import ACCESS_COOKIE

PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 414, 415, 422, 423, 429, 431, 503)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_STRING = Schema(type=OpenAPIType.STRING)
FIELD_ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["field", "message"],
    properties={"field": _STRING, "message": _STRING},
)
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="RFC 9457 problem details, with the `error` and `message` of the reference",
    required=["type", "title", "status", "detail", "error", "message"],
    properties={
        "type": _STRING,
        "title": _STRING,
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": _STRING,
        "error": _STRING,
        "message": _STRING,
        "details": Schema(
            type=OpenAPIType.ARRAY,
            description="Every invalid field of the request",
            items=Reference("#/components/schemas/FieldError"),
        ),
        "instance": _STRING,
    },
)


BEARER = "BearerToken"
BEARER_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    bearer_format="JWT",
    description=f"The access token of login, register or refresh (or the `{ACCESS_COOKIE}` cookie)",
)


def document_problems(app_config: AppConfig) -> AppConfig:
    """`on_app_init` hook: docstrings as descriptions, and the error answers added at start."""
    if app_config.openapi_config is not None:
        app_config.openapi_config.use_handler_docstrings = True
    app_config.on_startup.append(describe_operations)
    return app_config


def describe_operations(app: Litestar) -> None:
    """Give every operation of `app`'s OpenAPI document its summary and problem answers."""
    openapi = app.openapi_schema
    components = openapi.components
    if isinstance(components, list):  # pragma: no cover - Litestar builds one Components
        components = components[0]
    components = components or Components()
    components.schemas = {
        **(components.schemas or {}),
        "Problem": PROBLEM_SCHEMA,
        "FieldError": FIELD_ERROR_SCHEMA,
    }
    closed = _closed_bodies()
    for name, schema in (components.schemas or {}).items():
        if name in closed and isinstance(schema, Schema):
            schema.additional_properties = False
        _numbers_once(schema)
    components.security_schemes = {**(components.security_schemes or {}), BEARER: BEARER_SCHEME}
    openapi.components = components
    public = _public_operations(app)
    for path, path_item in (openapi.paths or {}).items():
        for method in _METHODS:
            operation = getattr(path_item, method, None)
            if isinstance(operation, Operation):
                _describe(operation)
                if (path, method) not in public:
                    operation.security = [{BEARER: []}]


def _numbers_once(schema: Schema | Reference) -> None:
    """Drop `integer` from a `oneOf` that also has `number`, which every integer matches:
    Litestar writes `int | float` so, and then no integer is valid under exactly one."""
    if not isinstance(schema, Schema):
        return
    if schema.one_of:
        types = [b.type for b in schema.one_of if isinstance(b, Schema)]
        if OpenAPIType.NUMBER in types and OpenAPIType.INTEGER in types:
            schema.one_of = [
                b
                for b in schema.one_of
                if not (isinstance(b, Schema) and b.type == OpenAPIType.INTEGER and not b.enum)
            ]
    for nested in (*(schema.one_of or ()), *(schema.any_of or ()), *(schema.all_of or ())):
        _numbers_once(nested)
    for nested in (schema.properties or {}).values():
        _numbers_once(nested)
    if isinstance(schema.items, Schema):
        _numbers_once(schema.items)


def _closed_bodies() -> set[str]:
    """Names of the body structs that refuse unknown fields."""
    found: set[str] = set()
    pending: list[type] = [ApiBody]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__struct_config__.forbid_unknown_fields:  # type: ignore[attr-defined]
            found.add(cls.__name__)
    return found


def _public_operations(app: Litestar) -> set[tuple[str, str]]:
    """(path as the document writes it, method) of every route open to anyone."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        path = _document_path(route.path)
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.opt.get("public"):
                found.update((path, str(method).lower()) for method in handler.http_methods)
    return found


def _document_path(route_path: str) -> str:
    """`/a/{id:uuid}` as the OpenAPI document writes it: `/a/{id}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route_path)


def _describe(operation: Operation) -> None:
    if operation.description:
        operation.summary = operation.description.strip().splitlines()[0].rstrip(".")
    responses = operation.responses = dict(operation.responses or {})
    no_content = responses.get("204")
    if isinstance(no_content, OpenAPIResponse):
        no_content.content = None
    # Litestar's own 400 describes its ValidationException as application/json.
    responses["400"] = _problem_response(400)
    for status in PROBLEM_STATUSES:
        responses.setdefault(str(status), _problem_response(status))


def _problem_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=HTTPStatus(status).phrase,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
    )
