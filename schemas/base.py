"""The one msgspec base for API bodies, and the shared constraint aliases."""

from __future__ import annotations

import msgspec


class ApiBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Request and response bodies: camelCase on the wire, unknown fields refused."""


class ApiResponse(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Response bodies: camelCase on the wire, unset fields left out."""


MAX_PAGE_SIZE = 100
