"""Rate limiting: GCRA decisions in process, a cluster budget and strict limits in Redis."""

from actors.ratelimit.gcra import Decision, GcraStore, measure_store_memory
from actors.ratelimit.headers import rate_limit_headers, retry_after_header
from actors.ratelimit.policy import API, AUTH, GENERAL, RatePolicy
from actors.ratelimit.redis_sync import GlobalBudgetSync, StrictLimiter

__all__ = [
    "API",
    "AUTH",
    "GENERAL",
    "Decision",
    "GcraStore",
    "GlobalBudgetSync",
    "RatePolicy",
    "StrictLimiter",
    "measure_store_memory",
    "rate_limit_headers",
    "retry_after_header",
]
