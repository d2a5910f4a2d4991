"""The application's error root and the one place mapping errors to problem+json.

    ApplicationError                 500 (base; `status`, `error` and `message`)
     ├── BadRequest                  400
     │    └── ValidationFailed       400, with `details` per invalid field
     ├── Unauthorized                401
     ├── Forbidden                   403
     ├── NotFound                    404
     ├── Conflict                    409
     ├── PayloadTooLarge             413
     ├── UriTooLong                  414
     ├── UnsupportedMediaType        415
     ├── UnprocessableContent        422
     ├── Locked                      423, with Retry-After
     ├── TooManyRequests             429, with Retry-After
     ├── HeaderFieldsTooLarge        431
     └── ServiceUnavailable          503, a dependency is down

Litestar's own HTTP exceptions, database and Redis outages, a full password-hashing
queue (503 with Retry-After) and anything unexpected are mapped here too; no stack trace
leaves the server outside development. A path whose id does not parse is a 400
(Litestar's router calls it a 404), and a value the database refuses as data (psycopg's
DataError, such as NUL in text) is a 400: the schemas should refuse such input first,
this is the last line.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import msgspec
import psycopg
import psycopg_pool
import redis.exceptions
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from schemas.problem import FieldError, Problem
from server.http.path_parameters import malformed_path_parameters
from server.http.validation import body_field_errors
from server.security.passwords import HashQueueFull

logger = logging.getLogger("sevenp.errors")

PROBLEM_JSON = "application/problem+json"


class ApplicationError(Exception):
    status: ClassVar[int] = 500
    error: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or HTTPStatus(self.status).phrase
        self.details = details
        self.headers = dict(headers or {})
        super().__init__(self.message)


class BadRequest(ApplicationError):
    status = 400
    error = "Bad Request"


class ValidationFailed(BadRequest):
    error = "Validation Error"


class Unauthorized(ApplicationError):
    status = 401
    error = "Unauthorized"


class Forbidden(ApplicationError):
    status = 403
    error = "Forbidden"


class NotFound(ApplicationError):
    status = 404
    error = "Not Found"


class Conflict(ApplicationError):
    status = 409
    error = "Conflict"


class PayloadTooLarge(ApplicationError):
    status = 413
    error = "Payload Too Large"


class UriTooLong(ApplicationError):
    status = 414
    error = "URI Too Long"


class UnsupportedMediaType(ApplicationError):
    status = 415
    error = "Unsupported Media Type"


class UnprocessableContent(ApplicationError):
    status = 422
    error = "Unprocessable Content"


class Locked(ApplicationError):
    status = 423
    error = "Locked"


class TooManyRequests(ApplicationError):
    status = 429
    error = "Too Many Requests"


class HeaderFieldsTooLarge(ApplicationError):
    status = 431
    error = "Request Header Fields Too Large"


class ServiceUnavailable(ApplicationError):
    status = 503
    error = "Service Unavailable"


def problem_response(
    status: int,
    *,
    error: str,
    message: str,
    details: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
    trace: str | None = None,
) -> Response[Problem]:
    phrase = HTTPStatus(status).phrase
    body = Problem(
        type="about:blank",
        title=phrase,
        status=status,
        detail=message,
        error=error,
        message=message,
        details=details if details is not None else msgspec.UNSET,
        instance=instance if instance is not None else msgspec.UNSET,
        trace=trace if trace is not None else msgspec.UNSET,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _validation_details(extra: Any) -> list[FieldError]:
    details: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, Mapping):
                field = str(item.get("key") or item.get("field") or "body")
                details.append(FieldError(field=field, message=str(item.get("message", ""))))
    return details


def _on_application_error(
    request: Request[Any, Any, Any], exc: ApplicationError
) -> Response[Problem]:
    return problem_response(
        exc.status,
        error=exc.error,
        message=exc.message,
        details=exc.details,
        headers=exc.headers,
        instance=request.url.path,
    )


def _body_type(request: Request[Any, Any, Any]) -> type[msgspec.Struct] | None:
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    for candidate in (data.annotation, *getattr(data, "args", ())):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    details = _validation_details(exc.extra)
    body_type = _body_type(request)
    raw = request._connection_state.body  # cached by Litestar when it read the body
    if body_type is not None and isinstance(raw, bytes) and raw:
        every = body_field_errors(raw, body_type)
        if every is None:
            return _malformed_json(request)
        if every:
            details = every
    return problem_response(
        400,
        error="Validation Error",
        message="The request is invalid" if details else exc.detail,
        details=details or None,
        instance=request.url.path,
    )


def _malformed_json(request: Request[Any, Any, Any]) -> Response[Problem]:
    return problem_response(
        400, error="Bad Request", message="Malformed JSON body", instance=request.url.path
    )


def _caused_by_bad_json(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, msgspec.DecodeError) and not isinstance(
            cause, msgspec.ValidationError
        ):
            return True
        cause = cause.__cause__
    return False


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if exc.status_code == 400 and _caused_by_bad_json(exc):
        return _malformed_json(request)
    if exc.status_code == 404 and (malformed := _malformed_path_parameters(request, exc)):
        return problem_response(
            400,
            error="Validation Error",
            message="A path parameter is malformed",
            details=malformed,
            instance=request.url.path,
        )
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    message = exc.detail if exc.detail and exc.detail != phrase else _default_message(status)
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return problem_response(
        status, error=phrase, message=message, headers=headers, instance=request.url.path
    )


def _malformed_path_parameters(
    request: Request[Any, Any, Any], exc: HTTPException
) -> list[FieldError]:
    # The router's 404 for a parameter that does not parse is raised from its ValueError.
    cause = exc.__cause__
    if not isinstance(cause, ValueError) or isinstance(cause, HTTPException):
        return []
    return malformed_path_parameters(request.app.routes, request.url.path)


def _default_message(status: int) -> str:
    if status == 404:
        return "The requested resource was not found"
    if status == 405:
        return "The method is not allowed for this resource"
    if status == 413:
        return "The request body is too large"
    return HTTPStatus(status).description or HTTPStatus(status).phrase


def _on_data_error(request: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[Problem]:
    logger.warning("data refused by the database on %s: %s", request.url.path, exc)
    return problem_response(
        400,
        error="Bad Request",
        message="The request holds a value that cannot be stored",
        instance=request.url.path,
    )


def _on_dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    logger.warning("dependency unavailable on %s: %r", request.url.path, exc)
    return problem_response(
        503,
        error="Service Unavailable",
        message="A dependency of this service is unavailable; retry shortly",
        headers={"Retry-After": "5"},
        instance=request.url.path,
    )


def _on_hash_queue_full(request: Request[Any, Any, Any], exc: HashQueueFull) -> Response[Problem]:
    logger.warning("password hashing queue full on %s", request.url.path)
    return problem_response(
        503,
        error="Service Unavailable",
        message="Too many sign-ins are being checked right now; retry shortly",
        headers={"Retry-After": "1"},
        instance=request.url.path,
    )


def exception_handlers(*, expose_traces: bool) -> ExceptionHandlersMap:
    """The handlers for the app; `expose_traces` only in development."""

    def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            error="Internal Server Error",
            message="An unexpected error occurred",
            instance=request.url.path,
            trace="".join(traceback.format_exception(exc)) if expose_traces else None,
        )

    return {
        ApplicationError: _on_application_error,
        ValidationException: _on_validation,
        HTTPException: _on_http_exception,
        psycopg.DataError: _on_data_error,
        HashQueueFull: _on_hash_queue_full,
        psycopg.OperationalError: _on_dependency_down,
        psycopg_pool.PoolTimeout: _on_dependency_down,
        redis.exceptions.ConnectionError: _on_dependency_down,
        redis.exceptions.TimeoutError: _on_dependency_down,
        TimeoutError: _on_dependency_down,
        Exception: on_unexpected,
    }
