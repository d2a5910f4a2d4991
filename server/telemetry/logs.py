"""Logs: one JSON object per line in production, readable lines in development.

Each line carries the request it was written for (request id, trace id, user id, route, and
for the access line its status and duration) from `request_log`, a context variable the
request gate sets. Values are JSON-encoded, so no input (a header, a field) can break a line
or forge another; the readable format escapes line breaks for the same reason. Fields whose
names mark them as secret (passwords, tokens, secrets, keys, `Authorization`, `Cookie`) are
redacted at any depth, as the reference's `sanitizeLogData` does, and so are bearer tokens and
JWTs inside messages.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import msgspec

from server.settings import Settings

REDACTED = "***REDACTED***"
_SENSITIVE_NAME = re.compile(
    r"pass(word|wd|phrase)?$|secret|token|authorization|cookie|key$|credential|signature",
    re.IGNORECASE,
)
_SENSITIVE_TEXT = re.compile(
    r"(?i)(bearer\s+)[^\s,;\"']+|eyJ[\w-]+\.[\w-]+\.[\w-]*|"
    r"((?:password|token|secret)[\"']?\s*[:=]\s*[\"']?)[^\s,;\"'&]+"
)
_encode = msgspec.json.Encoder().encode


class RequestLog:
    """What every log line written while handling one request says about it."""

    __slots__ = ("duration", "method", "number", "route", "status", "trace_id", "user_id")

    prefix = ""
    """The worker's part of request ids: `<prefix>-<number in hex>`."""

    def __init__(self, number: int, method: str, route: str) -> None:
        self.number = number
        self.method = method
        self.route = route
        self.trace_id = 0
        self.user_id: str | None = None
        self.status: int | None = None
        self.duration: float | None = None

    @property
    def request_id(self) -> str:
        return f"{self.prefix}-{self.number:x}"


request_log: ContextVar[RequestLog | None] = ContextVar("sevenp_request_log", default=None)


def sanitize(value: Any) -> Any:
    """`value` with every field named like a secret redacted, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _SENSITIVE_NAME.search(str(key)) else sanitize(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [sanitize(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


_SUSPECT = ("bearer", "eyj", "password", "token", "secret")


def redact_text(text: str) -> str:
    """`text` without bearer tokens, JWTs and `password=...`-like values."""
    lowered = text.lower()
    if not any(suspect in lowered for suspect in _SUSPECT):
        return text
    return _SENSITIVE_TEXT.sub(_redacted, text)


def _redacted(found: re.Match[str]) -> str:
    lead = found.group(1) or found.group(2) or ""
    return lead + REDACTED


_second: list[Any] = [-1, ""]


def _utc(created: float) -> str:
    seconds = int(created)
    if seconds != _second[0]:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{int((created - seconds) * 1000):03d}Z"


def _request_fields(entry: RequestLog) -> dict[str, Any]:
    fields: dict[str, Any] = {"requestId": entry.request_id, "route": entry.route}
    if entry.trace_id:
        fields["traceId"] = f"{entry.trace_id:032x}"
    if entry.user_id is not None:
        fields["userId"] = entry.user_id
    if entry.status is not None:
        fields["method"] = entry.method
        fields["status"] = entry.status
    if entry.duration is not None:
        fields["durationMs"] = round(entry.duration * 1000, 3)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra={"fields": {...}}` adds (sanitized) fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        entry = request_log.get()
        if entry is not None:
            line.update(_request_fields(entry))
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            line.update(sanitize(fields))
        if record.exc_info:
            line["exception"] = redact_text(self.formatException(record.exc_info))
        return _encode(line).decode()


class TextFormatter(logging.Formatter):
    """`time level logger message [request fields]`, line breaks escaped."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        entry = request_log.get()
        extra: dict[str, Any] = {} if entry is None else _request_fields(entry)
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            extra.update(sanitize(fields))
        if extra:
            text += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return redact_text(text).replace("\r", "\\r").replace("\n", "\\n")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs (and replaces when logging is configured again).

    Buffered, it writes lines in batches: at once for a WARNING or worse, past 256 lines, and
    at the latest `FLUSH_SECONDS` after a line, from a daemon thread; a crash loses at most
    that much INFO. A write per line costs more than the rest of a short request's telemetry.
    """

    FLUSH_SECONDS = 0.5

    def __init__(self, stream: Any, *, buffered: bool) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._buffered = buffered
        self._retired = threading.Event()
        if buffered:
            threading.Thread(target=self._flush_often, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        if not self._buffered:
            super().emit(record)
            return
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= 256:
            self._drain()

    def _drain(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._drain()

    def close(self) -> None:
        # logging.config.dictConfig (Litestar's, at app start) closes every handler it finds
        # and leaves them installed: closing flushes, and the flusher runs on until `retire`.
        self.flush()
        super().close()

    def retire(self) -> None:
        self._retired.set()
        self.close()

    def _flush_often(self) -> None:
        while not self._retired.wait(self.FLUSH_SECONDS):
            self.flush()


def configure_logging(settings: Settings) -> None:
    """Root logging to stdout, JSON (buffered) or text as the settings say."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.retire()
    handler = _Handler(sys.stdout, buffered=settings.json_logs)
    handler.setFormatter(JsonFormatter() if settings.json_logs else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
