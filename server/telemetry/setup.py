"""The OpenTelemetry SDK of one worker, set up once at start from the `OTEL_*` settings.

A MeterProvider always (read by `GET /metrics`, and exported over OTLP/HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set), a TracerProvider with a parent-based sampler, and
neither when `OTEL_SDK_DISABLED=true`: then the gate measures nothing and the instruments
are the API's no-op ones. Providers belong to the worker's runtime, never to the process's
globals, so several apps in one process (tests) each have their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Histogram, Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Tracer

from server.settings import Settings
from server.telemetry.http_metrics import RequestDurations
from server.telemetry.prometheus import SharedMetrics, SnapshotReader, add_metrics, shared_directory

DB_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The semantic conventions' advised boundaries for db.client.operation.duration."""


class GateIds(RandomIdGenerator):
    """Random ids, except the trace id the request gate already drew for a root span."""

    def __init__(self) -> None:
        self.pending = 0

    def generate_trace_id(self) -> int:
        trace_id, self.pending = self.pending, 0
        return trace_id or super().generate_trace_id()


class _WithRequestDurations(OTLPMetricExporter):
    def __init__(self, requests: RequestDurations, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._requests = requests

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = None, **kwargs: Any
    ) -> MetricExportResult:
        merged = add_metrics(metrics_data, [self._requests.metric()])
        return super().export(merged, timeout_millis, **kwargs)


@dataclass(slots=True)
class Telemetry:
    """What the gate, the database and the Redis client measure with; see the module doc."""

    enabled: bool
    meter: Meter
    requests: RequestDurations = field(default_factory=RequestDurations)
    tracer: Tracer | None = None
    ids: GateIds | None = None
    root_bound: int = 0
    """A root request is sampled when the low 64 bits of its trace id are below this."""
    shared: SharedMetrics | None = None
    operation_duration: Histogram | None = None
    """`db.client.operation.duration`, for SQL statements and Redis commands alike."""
    _meter_provider: MeterProvider | None = None
    _tracer_provider: TracerProvider | None = None

    def shutdown(self) -> None:
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._meter_provider is not None:
            self._meter_provider.shutdown(timeout_millis=2_000)


def disabled() -> Telemetry:
    return Telemetry(enabled=False, meter=NoOpMeterProvider().get_meter("sevenp"))


def _sampler(settings: Settings) -> tuple[Sampler, int]:
    full = 1 << 64
    if settings.otel_traces_sampler == "parentbased_always_on":
        return ParentBased(ALWAYS_ON), full
    if settings.otel_traces_sampler == "parentbased_always_off":
        return ParentBased(ALWAYS_OFF), 0
    ratio = TraceIdRatioBased(settings.otel_traces_sampler_arg)
    return ParentBased(ratio), ratio.bound


def setup_telemetry(
    settings: Settings,
    instance_id: str,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """The worker's providers; extra processors and readers are for tests and embedding."""
    if settings.otel_sdk_disabled:
        return disabled()
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "service.instance.id": instance_id}
    )
    requests = RequestDurations()
    endpoint = (settings.otel_exporter_otlp_endpoint or "").rstrip("/")

    def request_metrics() -> Sequence[Metric]:
        return [requests.metric()] if len(requests) else []

    reader = SnapshotReader(request_metrics)
    readers: list[MetricReader] = [reader, *metric_readers]
    if endpoint:
        exporter: MetricExporter = _WithRequestDurations(
            requests, endpoint=f"{endpoint}/v1/metrics"
        )
        readers.append(
            PeriodicExportingMetricReader(
                exporter, export_interval_millis=settings.otel_metric_export_interval
            )
        )
    meter_provider = MeterProvider(
        metric_readers=readers,
        resource=resource,
    )
    meter = meter_provider.get_meter("sevenp")
    sampler, root_bound = _sampler(settings)
    ids = GateIds()
    tracer_provider = TracerProvider(sampler=sampler, resource=resource, id_generator=ids)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    if endpoint:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
        )
    return Telemetry(
        enabled=True,
        meter=meter,
        requests=requests,
        tracer=tracer_provider.get_tracer("sevenp"),
        ids=ids,
        root_bound=root_bound,
        shared=SharedMetrics(reader, shared_directory(settings.metrics_dir)),
        operation_duration=meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=DB_BOUNDS,
        ),
        _meter_provider=meter_provider,
        _tracer_provider=tracer_provider,
    )
