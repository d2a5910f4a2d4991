"""HTTP header values for rate limits: draft-ietf-httpapi-ratelimit-headers-08 and Retry-After.

`RateLimit-Policy: "general";q=1000;w=900` and `RateLimit: "general";r=997;t=12` are Structured
Field Lists (RFC 8941) of one Item each: the policy name as an sf-string with integer parameters.
Values for several policies combine into one field by joining them with ", ". While limited, `t`
equals Retry-After, as the draft recommends; otherwise it is the time until the bucket is full.
"""

from __future__ import annotations

import functools
import math

from actors.ratelimit.gcra import Decision
from actors.ratelimit.policy import RatePolicy


@functools.lru_cache(maxsize=64)
def sf_string(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"not representable as an sf-string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _seconds(value: float) -> int:
    return max(0, math.ceil(value))


def retry_after_header(decision: Decision) -> str:
    """Retry-After in whole seconds, rounded up: >= 1 when limited, 0 when allowed."""
    if decision.allowed:
        return "0"
    return str(max(1, math.ceil(decision.retry_after)))


def policy_item(policy: RatePolicy) -> str:
    """One policy's member of the RateLimit-Policy list: it depends on the policy alone."""
    return f"{sf_string(policy.name)};q={policy.limit};w={_seconds(policy.window_seconds)}"


def remaining_item(policy: RatePolicy, decision: Decision) -> str:
    """One policy's member of the RateLimit list, for this decision."""
    reset = (
        _seconds(decision.reset_after) if decision.allowed else int(retry_after_header(decision))
    )
    return f"{sf_string(policy.name)};r={decision.remaining};t={reset}"


def rate_limit_headers(policy: RatePolicy, decision: Decision) -> dict[str, str]:
    """The RateLimit-Policy and RateLimit fields for one policy's decision."""
    return {
        "RateLimit-Policy": policy_item(policy),
        "RateLimit": remaining_item(policy, decision),
    }
