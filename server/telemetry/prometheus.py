"""`GET /metrics` for every worker of this instance, whichever worker the scrape reaches.

Each Granian worker is a process with its own MeterProvider. prometheus_client's
multiprocess mode cannot carry OpenTelemetry's collector (opentelemetry-python #3747), so
each worker translates its own metrics with OpenTelemetry's Prometheus reader (into a
private registry) and, every `METRICS_SHARE_SECONDS`, writes them as a snapshot file into a
directory shared by the workers of one server (`<METRICS_DIR>/<pid of the Granian process>/`,
replaced atomically). The worker that takes the scrape renders its own metrics as they are
now and its siblings' latest snapshots, each series labelled `worker="<pid>"`. Snapshots of
workers that are gone are deleted on sight; a worker removes its own when it stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric as PrometheusFamily

from actors.base import Actor

logger = logging.getLogger("sevenp.telemetry")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SCOPE = InstrumentationScope("sevenp.http")


def add_metrics(data: MetricsData, extra: Sequence[Metric]) -> MetricsData:
    """`data` with `extra` as one more scope of its first resource."""
    if not extra or not data.resource_metrics:
        return data
    first, *rest = data.resource_metrics
    scope = ScopeMetrics(scope=_SCOPE, metrics=list(extra), schema_url="")
    merged = ResourceMetrics(
        resource=first.resource,
        scope_metrics=[*first.scope_metrics, scope],
        schema_url=first.schema_url,
    )
    return MetricsData(resource_metrics=[merged, *rest])


class SnapshotReader(PrometheusMetricReader):
    """OpenTelemetry's Prometheus reader on a private registry, plus the gate's own series."""

    def __init__(self, extra: Callable[[], Sequence[Metric]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        super().__init__(disable_target_info=True, scope_info_enabled=False, registry=self.registry)
        self._extra = extra

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        super()._receive_metrics(add_metrics(metrics_data, self._extra()), timeout_millis)

    def families(self) -> list[Family]:
        return [
            Family(
                name=family.name,
                documentation=family.documentation,
                unit=family.unit,
                type=family.type,
                samples=[(s.name, dict(s.labels), s.value) for s in family.samples],
            )
            for family in self.registry.collect()
        ]


class Family(msgspec.Struct, array_like=True):
    name: str
    documentation: str
    unit: str
    type: str
    samples: list[tuple[str, dict[str, str], float]]


class Snapshot(msgspec.Struct):
    pid: int
    written_at: float
    families: list[Family]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Snapshot)


def shared_directory(configured: str | None) -> Path:
    """This server's directory: one per Granian process, whose workers all share it."""
    base = (
        Path(configured)
        if configured
        else Path(tempfile.gettempdir()) / f"sevenp-metrics-{os.getuid()}"
    )
    path = base / str(os.getppid())
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class SharedMetrics:
    """This worker's snapshots and the scrape that merges its siblings' into its own."""

    def __init__(self, reader: SnapshotReader, directory: Path) -> None:
        self.reader = reader
        self.directory = directory
        self.pid = os.getpid()
        self._path = directory / f"{self.pid}.json"

    def write(self) -> None:
        snapshot = Snapshot(self.pid, time.time(), self.reader.families())
        temporary = self._path.with_name(f".{self.pid}.tmp")
        temporary.write_bytes(_encoder.encode(snapshot))
        temporary.replace(self._path)

    def remove(self) -> None:
        self._path.unlink(missing_ok=True)

    def siblings(self) -> list[Snapshot]:
        found: list[Snapshot] = []
        for path in self.directory.glob("*.json"):
            if path == self._path or not path.stem.isdigit():
                continue
            if not _alive(int(path.stem)):
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(_decoder.decode(path.read_bytes()))
            except (OSError, msgspec.DecodeError):
                logger.warning("unreadable metrics snapshot %s skipped", path.name)
        return found

    def scrape(self) -> bytes:
        """Prometheus text of every worker: this one now, the others as last shared."""
        snapshots = [(self.pid, self.reader.families())]
        snapshots += [(s.pid, s.families) for s in self.siblings()]
        return render(snapshots)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Families:
    def __init__(self, families: Iterable[PrometheusFamily]) -> None:
        self._families = families

    def collect(self) -> Iterable[PrometheusFamily]:
        return self._families


def render(snapshots: Sequence[tuple[int, Sequence[Family]]]) -> bytes:
    """One exposition of several workers' families, each series labelled with its worker."""
    merged: dict[str, PrometheusFamily] = {}
    for pid, families in snapshots:
        worker = str(pid)
        for family in families:
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = PrometheusFamily(
                    family.name, family.documentation, family.type, family.unit
                )
            for name, labels, value in family.samples:
                target.add_sample(name, {**labels, "worker": worker}, value)
    return generate_latest(_Families(merged.values()))


class MetricsShare(Actor):
    """Writes this worker's snapshot for its siblings every `interval` seconds."""

    def __init__(self, shared: SharedMetrics, *, interval: float) -> None:
        self.name = "metrics"
        self._shared = shared
        self._interval = interval

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        try:
            while True:
                try:
                    self._shared.write()
                except OSError as exc:
                    logger.warning("metrics snapshot not written: %s", exc)
                await anyio.sleep(self._interval)
        finally:
            with contextlib.suppress(OSError):
                self._shared.remove()
