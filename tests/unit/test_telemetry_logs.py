"""Log lines: one JSON object per line that no value can break or forge, secrets redacted."""

from __future__ import annotations

import json
import logging
import sys

from server.telemetry.logs import (
    REDACTED,
    JsonFormatter,
    RequestLog,
    TextFormatter,
    request_log,
    sanitize,
)

FORGED = 'evil"\n{"level": "CRITICAL", "message": "forged"}\r\n'


def _record(message: str, *args: object, fields: object = None) -> logging.LogRecord:
    record = logging.LogRecord("sevenp.test", logging.INFO, __file__, 1, message, args, None)
    if fields is not None:
        record.fields = fields
    return record


def test_a_value_with_line_breaks_and_quotes_stays_inside_its_line() -> None:
    line = JsonFormatter().format(_record("user agent %s", FORGED, fields={"userAgent": FORGED}))
    assert "\n" not in line
    assert "\r" not in line
    parsed = json.loads(line)
    assert parsed["message"] == f"user agent {FORGED}"
    assert parsed["userAgent"] == FORGED
    assert parsed["level"] == "INFO"
    assert parsed["logger"] == "sevenp.test"
    assert parsed["time"].endswith("Z")


def test_the_readable_format_escapes_line_breaks() -> None:
    line = TextFormatter().format(_record("header %s", FORGED))
    assert "\n" not in line
    assert "\r" not in line
    assert "forged" in line


def test_secret_fields_are_redacted_at_any_depth() -> None:
    data = {
        "email": "ada@example.test",
        "password": "hunter2",
        "newPassword": "hunter3",
        "refreshToken": "r-123",
        "headers": {"Authorization": "Bearer abc.def.ghi", "Cookie": "sid=1", "accept": "*/*"},
        "items": [{"secret": "s", "apiKey": "k", "name": "ok"}],
    }
    assert sanitize(data) == {
        "email": "ada@example.test",
        "password": REDACTED,
        "newPassword": REDACTED,
        "refreshToken": REDACTED,
        "headers": {"Authorization": REDACTED, "Cookie": REDACTED, "accept": "*/*"},
        "items": [{"secret": REDACTED, "apiKey": REDACTED, "name": "ok"}],
    }


def test_tokens_inside_messages_are_redacted() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    line = JsonFormatter().format(
        _record("auth %s then %s and password=%s", "Bearer opaque-token-1", jwt, "hunter2")
    )
    message = json.loads(line)["message"]
    assert "opaque-token-1" not in message
    assert jwt not in message
    assert "hunter2" not in message
    assert message.count(REDACTED) == 3


def test_a_line_written_during_a_request_carries_its_fields() -> None:
    entry = RequestLog(255, "GET", "/api/courses/{course_id}")
    entry.trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    entry.user_id = "u-1"
    token = request_log.set(entry)
    try:
        line = json.loads(JsonFormatter().format(_record("looked up")))
    finally:
        request_log.reset(token)
    assert line["requestId"].endswith("-ff")
    assert line["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["userId"] == "u-1"
    assert line["route"] == "/api/courses/{course_id}"


def test_an_exception_is_kept_in_its_line() -> None:
    try:
        raise ValueError("password=hunter2 went wrong")
    except ValueError:
        record = logging.LogRecord(
            "sevenp.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert "ValueError" in parsed["exception"]
    assert "hunter2" not in line
