"""OpenTelemetry for the engine, kept private to each engine instance.

Every `Telemetry` owns its own SDK `MeterProvider` and `TracerProvider`; the global OTel
providers are never set, so several engines (one per test, or a host plus a console in one
process) never see each other's data. Metrics always go to an in-memory reader (what the
console reads through `metrics()`); spans always go to a bounded in-memory exporter (the
last 500, read through `recent_spans()`). The `console` exporter additionally prints both
to stdout, and `otlp` ships them over OTLP/HTTP when that optional package is installed.

The hot path stays cheap: resolutions are counted in a plain int by the engine and read by
an ObservableCounter callback only when metrics are collected.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    Histogram,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import INVALID_SPAN, Span, StatusCode

EXPORTERS = ("none", "console", "otlp")
SPAN_BUFFER = 500
OTLP_MISSING = (
    "the otlp exporter needs the opentelemetry-exporter-otlp-proto-http package; "
    "telemetry stays in memory"
)

_SCOPE = "oneiric_core"


class BoundedSpanExporter(SpanExporter):
    """Keeps the last `maxlen` finished spans in memory, oldest dropped first."""

    def __init__(self, maxlen: int = SPAN_BUFFER) -> None:
        self._spans: collections.deque[ReadableSpan] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._stopped = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopped:
            return SpanExportResult.FAILURE
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def spans(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        # Stop taking new spans but keep the buffer: the console may still show it.
        self._stopped = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def clean_attributes(attributes: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """OTel-safe attributes: drop None, enums become their value, anything else becomes str."""
    out: dict[str, str | int | float | bool] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, bool):
            out[name] = value
        elif isinstance(value, int):
            out[name] = int(value)
        elif isinstance(value, float):
            out[name] = float(value)
        elif isinstance(value, str):
            out[name] = str(value)
        else:
            out[name] = str(value)
    return out


def _without_key(attrs: dict[str, Any]) -> dict[str, Any]:
    """Histogram attributes: everything but the key. A histogram keeps a bucket array per
    attribute set, so one per key cost megabytes with thousands of keys (and as much again
    in any collector); the counters keep the key, so per-key rates stay available."""
    return {name: value for name, value in attrs.items() if name != "key"}


def _otlp_endpoint(endpoint: str | None, signal: str) -> str | None:
    """`http://collector:4318` -> `http://collector:4318/v1/<signal>`; a full URL is kept."""
    if not endpoint:
        return None
    base = endpoint.rstrip("/")
    if base.endswith(f"/v1/{signal}"):
        return base
    return f"{base}/v1/{signal}"


class Telemetry:
    """One engine's meters and tracer, readable in process and optionally exported."""

    def __init__(
        self,
        exporter: str = "none",
        endpoint: str | None = None,
        service_name: str = "oneiric",
        *,
        export_interval_s: float = 60.0,
    ) -> None:
        self.exporter = (exporter or "none").strip().lower()
        self.endpoint = endpoint
        self.service_name = service_name
        self.warning: str | None = None
        self._lock = threading.Lock()
        self._shutdown = False
        self._final_metrics: dict[str, list[tuple[dict, float]]] | None = None
        self._resolution_source: Callable[[], Mapping[str, int]] | None = None
        self._resolutions_registered = False

        if self.exporter not in EXPORTERS:
            self.warning = (
                f"unknown telemetry exporter '{exporter}' (use none, console or otlp); "
                "telemetry stays in memory"
            )
            self.exporter = "none"

        resource = Resource.create({"service.name": service_name})
        self._memory_reader = InMemoryMetricReader()
        readers: list[MetricReader] = [self._memory_reader]
        self.span_buffer = BoundedSpanExporter(SPAN_BUFFER)
        span_processors: list[Any] = [SimpleSpanProcessor(self.span_buffer)]
        interval_ms = max(1.0, export_interval_s * 1000.0)

        if self.exporter == "console":
            # Bind the stream now (the SDK defaults bind sys.stdout at import time).
            readers.append(
                PeriodicExportingMetricReader(
                    ConsoleMetricExporter(out=sys.stdout), export_interval_millis=interval_ms
                )
            )
            span_processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
        elif self.exporter == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                self.warning = OTLP_MISSING
            else:
                readers.append(
                    PeriodicExportingMetricReader(
                        OTLPMetricExporter(endpoint=_otlp_endpoint(endpoint, "metrics")),
                        export_interval_millis=interval_ms,
                    )
                )
                # Batch: a network export must never sit on the engine's hot path.
                span_processors.append(
                    BatchSpanProcessor(OTLPSpanExporter(endpoint=_otlp_endpoint(endpoint, "traces")))
                )

        exporting = len(readers) > 1
        self.meter_provider = MeterProvider(
            metric_readers=readers, resource=resource, shutdown_on_exit=exporting
        )
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=exporting)
        for processor in span_processors:
            self.tracer_provider.add_span_processor(processor)

        self.meter = self.meter_provider.get_meter(_SCOPE)
        self.tracer = self.tracer_provider.get_tracer(_SCOPE)
        self._swaps = self.meter.create_counter(
            "oneiric.swaps", unit="1", description="Swaps by domain, key, provider and outcome"
        )
        self._swap_duration = self.meter.create_histogram(
            "oneiric.swap.duration_ms", unit="ms", description="How long a swap took"
        )
        self._health_checks = self.meter.create_counter(
            "oneiric.health.checks", unit="1", description="Health checks by provider and status"
        )
        self._health_latency = self.meter.create_histogram(
            "oneiric.health.latency_ms", unit="ms", description="Health check latency"
        )

    # ------------------------------------------------------------------ recording

    @contextlib.contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[Span]:
        """A span around the body; an exception marks it as an error (and is re-raised).

        After `shutdown()` the body still runs, under a non-recording span.
        """
        if self._shutdown:
            yield INVALID_SPAN
            return
        with self.tracer.start_as_current_span(
            name,
            attributes=clean_attributes(attributes),
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield span

    def record_swap(
        self, *, domain: str, key: str, provider: str, outcome: str, duration_ms: float
    ) -> None:
        if self._shutdown:
            return
        attrs = clean_attributes({"domain": domain, "key": key, "provider": provider, "outcome": outcome})
        self._swaps.add(1, attrs)
        self._swap_duration.record(max(0.0, float(duration_ms)), _without_key(attrs))

    def record_health(
        self, *, domain: str, key: str, provider: str, status: str, latency_ms: float | None
    ) -> None:
        if self._shutdown:
            return
        attrs = clean_attributes({"domain": domain, "key": key, "provider": provider, "status": status})
        self._health_checks.add(1, attrs)
        if latency_ms is not None:
            self._health_latency.record(max(0.0, float(latency_ms)), _without_key(attrs))

    def observe_resolutions(self, source: Callable[[], Mapping[str, int]]) -> None:
        """Publish `oneiric.resolutions` from `source()` ({domain: cumulative count}).

        The callback runs only when metrics are collected, so a resolve costs one int
        increment in the engine and no OTel call. A later call replaces the source.
        """
        with self._lock:
            self._resolution_source = source
            if self._resolutions_registered:
                return
            self._resolutions_registered = True
        self.meter.create_observable_counter(
            "oneiric.resolutions",
            callbacks=[self._observe_resolutions],
            unit="1",
            description="Component resolutions by domain",
        )

    def _observe_resolutions(self, options: CallbackOptions) -> Iterable[Observation]:
        source = self._resolution_source
        if source is None:
            return []
        try:
            counts = dict(source())
        except Exception:  # a broken source must not break collection of every other metric
            return []
        return [
            Observation(int(count), {"domain": getattr(domain, "value", str(domain))})
            for domain, count in sorted(counts.items(), key=lambda kv: str(kv[0]))
        ]

    def observe_journal_head(self, source: Callable[[], int | None]) -> None:
        """Publish `oneiric.journal.head_id`, the id of the journal head the host last
        published (`source()`, None before the first): a collector that keeps it can tell
        when the journal later ends before it (a truncation, see journal_chain.py)."""

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            try:
                head = source()
            except Exception:  # as for resolutions: never break the other metrics
                return []
            return [] if head is None else [Observation(int(head))]

        self.meter.create_observable_gauge("oneiric.journal.head_id", callbacks=[observe], unit="1",
                                           description="Id of the journal's published hash-chain head")

    # ------------------------------------------------------------------ reading

    def metrics(self) -> dict[str, list[tuple[dict, float]]]:
        """Metric name -> [(attributes, value)] from the in-memory reader.

        Counters give their cumulative sum; a histogram gives its sum under its own name and
        its count under `name + ".count"`. After `shutdown()` the last snapshot is returned.
        """
        if self._shutdown:
            return dict(self._final_metrics or {})
        return self._collect()

    def _collect(self) -> dict[str, list[tuple[dict, float]]]:
        data = self._memory_reader.get_metrics_data()
        out: dict[str, list[tuple[dict, float]]] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points = metric.data.data_points
                    if isinstance(metric.data, Histogram):
                        sums = out.setdefault(metric.name, [])
                        counts = out.setdefault(metric.name + ".count", [])
                        for point in points:
                            attrs = dict(point.attributes or {})
                            sums.append((attrs, float(point.sum)))
                            counts.append((dict(attrs), float(point.count)))
                    else:
                        values = out.setdefault(metric.name, [])
                        for point in points:
                            value = getattr(point, "value", None)
                            if value is not None:
                                values.append((dict(point.attributes or {}), float(value)))
        return out

    def recent_spans(self, limit: int = 100) -> list[dict]:
        """The newest `limit` finished spans, oldest first, as plain dicts."""
        if limit <= 0:
            return []
        out: list[dict] = []
        for span in self.span_buffer.spans()[-limit:]:
            start, end = span.start_time or 0, span.end_time or 0
            parent = span.parent.span_id if span.parent is not None else None
            ctx = span.get_span_context()
            status = span.status
            out.append(
                {
                    "name": span.name,
                    "start_ns": start,
                    "end_ns": end,
                    "duration_ms": (end - start) / 1e6 if end and start else 0.0,
                    "attributes": dict(span.attributes or {}),
                    "status": {
                        StatusCode.OK: "ok",
                        StatusCode.ERROR: "error",
                    }.get(status.status_code, "unset"),
                    "status_message": status.description,
                    "trace_id": format(ctx.trace_id, "032x") if ctx else None,
                    "span_id": format(ctx.span_id, "016x") if ctx else None,
                    "parent_id": format(parent, "016x") if parent is not None else None,
                }
            )
        return out

    # ------------------------------------------------------------------ lifecycle

    def shutdown(self) -> None:
        """Flush exporters and stop; safe to call more than once."""
        with self._lock:
            if self._shutdown:
                return
            try:
                self._final_metrics = self._collect()
            except Exception:
                self._final_metrics = {}
            self._shutdown = True
        try:
            self.tracer_provider.shutdown()
        finally:
            self.meter_provider.shutdown()
