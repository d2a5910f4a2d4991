"""The OpenAPI document: every operation has a summary, a description and its error answers."""

from __future__ import annotations

from typing import Any

import httpx

from server.http.openapi_problems import PROBLEM_STATUSES

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
DOCUMENTED = {400, 401, 403, 404, 409, 413, 415, 422, 429, 503}


async def operations(http: httpx.AsyncClient) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    found = [
        (f"{method.upper()} {path}", operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(found) > 20
    return spec, found


async def test_every_operation_has_a_summary_and_a_description(http: httpx.AsyncClient) -> None:
    _, found = await operations(http)
    for name, operation in found:
        assert operation.get("summary", "").strip(), name
        assert operation.get("description", "").strip(), name
        assert "\n" not in operation["summary"], name


async def test_every_operation_documents_its_problem_answers(http: httpx.AsyncClient) -> None:
    spec, found = await operations(http)
    assert set(PROBLEM_STATUSES) >= DOCUMENTED
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "error", "message"} <= set(problem["required"])
    assert "FieldError" in spec["components"]["schemas"]
    for name, operation in found:
        for status in PROBLEM_STATUSES:
            answer = operation["responses"].get(str(status))
            assert answer is not None, (name, status)
            schema = answer["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (name, status)
        successes = [code for code in operation["responses"] if code.startswith("2")]
        assert successes, name
