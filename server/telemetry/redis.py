"""A Redis client that measures its commands: `db.client.operation.duration` and, inside a
sampled request, a client span per command (or per pipeline)."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Tracer
from redis.asyncio.client import Pipeline

_SYSTEM = "redis"


class _Measure:
    __slots__ = ("_attributes", "duration", "tracer")

    def __init__(self, duration: Histogram | None, tracer: Tracer | None) -> None:
        self.duration = duration
        self.tracer = tracer
        self._attributes: dict[str, dict[str, str]] = {}

    def attributes(self, operation: str) -> dict[str, str]:
        found = self._attributes.get(operation)
        if found is None:
            found = self._attributes[operation] = {
                "db.system.name": _SYSTEM,
                "db.operation.name": operation,
            }
        return found

    async def run(self, operation: str, call: Any) -> Any:
        attributes = self.attributes(operation)
        span = None
        if self.tracer is not None and trace.get_current_span().is_recording():
            span = self.tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        started = time.perf_counter()
        error: str | None = None
        try:
            return await call
        except BaseException as exc:
            error = type(exc).__qualname__
            if span is not None:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            if self.duration is not None:
                self.duration.record(
                    time.perf_counter() - started,
                    attributes if error is None else {**attributes, "error.type": error},
                )
            if span is not None:
                span.end()


def _operation(args: tuple[Any, ...]) -> str:
    name = args[0] if args else "UNKNOWN"
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).split(" ", 1)[0].upper()


class MeasuredRedis(aioredis.Redis):
    """`redis.asyncio.Redis` whose commands and pipelines are measured (see the module doc)."""

    measure = _Measure(None, None)

    def measured(self, duration: Histogram | None, tracer: Tracer | None) -> MeasuredRedis:
        self.measure = _Measure(duration, tracer)
        return self

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        call = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await self.measure.run(_operation(args), call)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _MeasuredPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.measure = self.measure
        return pipe


class _MeasuredPipeline(Pipeline):
    measure = _Measure(None, None)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        result: list[Any] = await self.measure.run(
            "MULTI" if self.is_transaction else "PIPELINE", super().execute(raise_on_error)
        )
        return result
