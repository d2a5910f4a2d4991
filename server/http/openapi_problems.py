"""The OpenAPI document describes the errors: problem+json answers on every operation.

Registered once for the whole app (`on_app_init`): handler docstrings become operation
descriptions, their first line the summary, and every operation lists the
problem+json statuses the server may answer it with, as the `Problem` schema.
"""

from __future__ import annotations

from http import HTTPStatus

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from server.errors import PROBLEM_JSON

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
    openapi.components = components
    for path_item in (openapi.paths or {}).values():
        for method in _METHODS:
            operation = getattr(path_item, method, None)
            if isinstance(operation, Operation):
                _describe(operation)


def _describe(operation: Operation) -> None:
    if operation.description:
        operation.summary = operation.description.strip().splitlines()[0].rstrip(".")
    responses = operation.responses = dict(operation.responses or {})
    # Litestar's own 400 describes its ValidationException as application/json.
    responses["400"] = _problem_response(400)
    for status in PROBLEM_STATUSES:
        responses.setdefault(str(status), _problem_response(status))


def _problem_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=HTTPStatus(status).phrase,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
    )
