"""One `on_app_init` hook for the strict reading of requests every route gets.

JSON bodies through `JsonRequest` (depth, UTF-8, duplicate keys) and integer query
parameters through `strict_query_integers`, ahead of any before-request hook the app sets.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.config.app import AppConfig
from litestar.utils.sync import ensure_async_callable

from server.http.json_body import JsonRequest
from server.http.query_integers import strict_query_integers


def strict_input(app_config: AppConfig) -> AppConfig:
    app_config.request_class = JsonRequest
    then = app_config.before_request
    if then is None:
        app_config.before_request = strict_query_integers
    else:
        app_hook = ensure_async_callable(then)

        async def before_request(request: Request[Any, Any, Any]) -> Any:
            await strict_query_integers(request)
            return await app_hook(request)

        app_config.before_request = before_request
    return app_config
