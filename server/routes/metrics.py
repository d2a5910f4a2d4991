"""`GET /metrics`: Prometheus text of every worker of this instance.

The design across workers is in `server/telemetry/prometheus.py`.

Public unless `METRICS_TOKEN` is set; then the scraper sends it as a bearer token.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from server.errors import NotFound, Unauthorized
from server.settings import Settings
from server.telemetry.prometheus import CONTENT_TYPE
from server.telemetry.setup import Telemetry


@get(
    "/metrics",
    opt={"public": True, "rate_limit": False},
    include_in_schema=False,
    media_type=CONTENT_TYPE,
)
async def metrics(
    request: Request[Any, Any, Any],
    telemetry: NamedDependency[Telemetry],
    settings: NamedDependency[Settings],
) -> Response[bytes]:
    """Every worker's metrics; each series labelled with its `worker`."""
    if settings.metrics_token is not None:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Unauthorized(
                "The metrics token is required", headers={"WWW-Authenticate": "Bearer"}
            )
    if telemetry.shared is None:
        raise NotFound("Telemetry is disabled (OTEL_SDK_DISABLED)")
    return Response(telemetry.shared.scrape(), media_type=CONTENT_TYPE)
