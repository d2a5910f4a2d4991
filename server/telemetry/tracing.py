"""W3C trace context in the request gate: `traceparent` in, `traceresponse` out.

The gate parses `traceparent` itself (a fixed-width format) and, for a request that comes
without one, draws the trace id and tests it against the sampler's ratio before asking the
SDK for anything, so a request that is not sampled costs a random number and no span. A
sampled root hands its drawn id to the SDK (`GateIds`), whose parent-based sampler then takes
the same decision; a request whose parent is sampled gets its span as a remote child.
"""

from __future__ import annotations

import re

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
LOW_64 = (1 << 64) - 1


class Parent:
    """A valid `traceparent` (and its `tracestate`) received with a request."""

    __slots__ = ("flags", "span_id", "trace_id", "tracestate")

    def __init__(self, trace_id: int, span_id: int, flags: int, tracestate: bytes | None) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags
        self.tracestate = tracestate

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def context(self) -> Context:
        state = (
            TraceState.from_header([self.tracestate.decode("latin-1")]) if self.tracestate else None
        )
        span_context = SpanContext(
            self.trace_id,
            self.span_id,
            is_remote=True,
            trace_flags=TraceFlags(self.flags & 1),
            trace_state=state,
        )
        return trace.set_span_in_context(NonRecordingSpan(span_context))


def parse_traceparent(value: bytes, tracestate: bytes | None = None) -> Parent | None:
    """The parent named by a `traceparent` field, or None for a malformed or invalid one."""
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = found.groups()
    if version == b"ff" or (version == b"00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return Parent(trace_id, span_id, int(flags_hex, 16), tracestate)


def traceresponse(trace_id: int, span_id: int, sampled: bool) -> bytes:
    """The `traceresponse` value (W3C Trace Context Level 2)."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}".encode()
