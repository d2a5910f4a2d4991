"""The API reference page at `/schema`: Swagger UI served by this server, never from a CDN.

The assets are the ones the `swagger-ui-py` package ships (Swagger UI's own build, under its
Apache-2.0 licence, which is served beside them); the page starts it with a script file of
ours rather than an inline script, so that `DOCS_CONTENT_SECURITY_POLICY`, the page's own
policy, allows scripts and styles from this origin and nothing else.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

_OURS = Path(__file__).resolve().parents[1] / "static"
ASSETS_PATH = "/assets"

DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's build inside the installed package, found without importing
    the package (whose Python side is not used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class SwaggerUIPage(OpenAPIRenderPlugin):
    """Swagger UI with same-origin assets; the first plugin, so `/schema` itself shows it."""

    def __init__(self, *, path: str = "/swagger", **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        openapi_url = self.get_openapi_json_route(request)
        assets = openapi_url.rsplit("/", 1)[0] + ASSETS_PATH
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs.js"></script>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[_OURS, swagger_ui_assets()],
                opt={"public": True},
                include_in_schema=False,
                name="docs-assets",
            )
        )
