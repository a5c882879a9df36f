"""OpenTelemetry for the engine, kept private to each engine instance: spans, metrics, logs.

Every `Telemetry` owns its own SDK providers; the global OTel providers are never set, so
several engines (one per test, or a host plus a console in one process) never see each
other's data. What it records (docs/telemetry.md has every name):

* spans: a swap or an activation with its build, health gate, bind and cleanup; a probe
  round; a remote sync with its fetch, verify and register; a command the host runs for a
  client, continuing the client's trace when its request carries one (trace_context.py);
* metrics (telemetry_metrics.py), always readable in memory through `metrics()`, and
  exported every OTEL_METRIC_EXPORT_INTERVAL;
* logs: every journal event becomes a log record (`on_event`, a listener on the engine's
  bus), severity from its Severity, with the trace and span ids of the span active when it
  was emitted.

Configuration is settled by telemetry_config.py (app.yml, then the OTEL_* variables). With
the exporter `none` (the default) nothing is exported, so nothing pays for spans or log
records: `span()` returns NO_SPAN, a shared context manager that records nothing, and the
instrumented code checks `tracing` before building attributes. Metrics stay on (cheap: the
resolution count is a plain int the engine bumps, read only at collection).

A configured exporter that is missing or failing is a `problem` (telemetry_export.py says
how failures are seen), shown by `status()`.
"""

from __future__ import annotations

import collections
import enum
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from .telemetry_config import EXPORTERS, OTLP_MISSING, TelemetryConfig, TelemetryStatus, otlp_installed
from .telemetry_export import Exporters, ExportWatch
from .telemetry_metrics import DOMAIN, KEY, PROVIDER, SOURCE, Instruments
from .trace_context import NO_SPAN

SPAN_BUFFER = 500
EVENT_DATA_MAX = 4096  # characters of an event's data carried in its log record

_SCOPE = "oneiric_core"
_SEVERITY = {"info": (9, "INFO"), "warning": (13, "WARN"), "error": (17, "ERROR")}  # OTel SeverityNumber


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
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def component(domain: Any, key: str | None, provider: str | None = None) -> dict[str, Any]:
    """The attributes that name a component on spans and log records."""
    return {DOMAIN: getattr(domain, "value", domain), KEY: key, PROVIDER: provider}


def _resource(config: TelemetryConfig) -> Resource:
    attributes: dict[str, str | int] = {"service.name": config.service_name, "process.pid": os.getpid()}
    from importlib.metadata import PackageNotFoundError, version

    try:
        attributes["service.version"] = version("oneiric-console")
    except PackageNotFoundError:  # run from a checkout that was never installed
        pass
    attributes.update(config.resource)
    attributes["service.name"] = config.service_name  # OTEL_SERVICE_NAME (or its fallbacks) wins
    return Resource.create(attributes)


class Telemetry:
    """One engine's tracer, meters and logger, readable in process and optionally exported."""

    def __init__(self, config: TelemetryConfig | None = None, *,
                 on_change: Callable[[], None] | None = None) -> None:
        config = config or TelemetryConfig(memory_spans=True)
        self.config = config
        self.exporter = config.exporter if config.exporter in EXPORTERS else "none"
        self.warning: str | None = None  # a configuration problem found at start (also in status())
        self._lock = threading.Lock()
        self._shutdown = False
        self._final_metrics: dict[str, list[tuple[dict, float]]] | None = None
        self._resolution_source: Callable[[], Mapping[str, int]] | None = None
        self._resolutions_registered = False
        self._journal_rows: int | None = None
        self._on_change = on_change

        if config.exporter not in EXPORTERS:
            self.warning = (f"unknown telemetry exporter '{config.exporter}' (use none, console or otlp); "
                            "telemetry stays in memory")
        exporting = self.exporter != "none" and not config.disabled
        if exporting and self.exporter == "otlp" and not otlp_installed():
            self.warning, exporting = OTLP_MISSING, False
        self.watch = ExportWatch(config.destination(), on_change)
        exporters = Exporters(config if exporting else TelemetryConfig(), self.watch)

        resource = _resource(config)
        self._memory_reader = InMemoryMetricReader()
        readers: list[MetricReader] = [self._memory_reader]
        if exporters.metrics is not None:
            readers.append(PeriodicExportingMetricReader(
                exporters.metrics, export_interval_millis=max(1.0, config.export_interval_s * 1000.0)))
        self.meter_provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=exporting)
        self.meter = self.meter_provider.get_meter(_SCOPE)
        self.instruments = Instruments(self.meter, upstream=config.upstream_names)

        # Spans only where something takes them: an exporter, or the in-memory buffer when asked.
        self.tracing = not config.disabled and (exporters.spans is not None or config.memory_spans)
        self.span_buffer = BoundedSpanExporter(SPAN_BUFFER)
        self.tracer_provider: TracerProvider | None = None
        self.tracer: Any = None
        if self.tracing:
            self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=exporting)
            if config.memory_spans or exporters.spans is None:
                self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_buffer))
            if exporters.spans is not None:
                processor = BatchSpanProcessor if exporters.batched else SimpleSpanProcessor
                self.tracer_provider.add_span_processor(processor(exporters.spans))
            self.tracer = self.tracer_provider.get_tracer(_SCOPE)

        self.logger_provider: Any = None
        self._logger: Any = None
        if exporters.logs is not None:
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

            self.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=exporting,
                                                  meter_provider=self.meter_provider)
            log_processor = BatchLogRecordProcessor if exporters.batched else SimpleLogRecordProcessor
            self.logger_provider.add_log_record_processor(log_processor(exporters.logs))
            self._logger = self.logger_provider.get_logger(_SCOPE)
        self.instruments.observe("oneiric.journal.event.count", self._observe_journal_rows)

    # ------------------------------------------------------------------ spans

    def span(self, name: str, attributes: Mapping[str, Any] | None = None, /, *, kind: SpanKind | None = None,
             context: Any = None, **more: Any) -> Any:
        """A context manager: a span around the body, current inside it; an exception marks it
        as an error (and is re-raised). NO_SPAN when nothing records spans, or after
        `shutdown()` (the body still runs)."""
        if not self.tracing or self._shutdown:
            return NO_SPAN
        attrs = clean_attributes({**(attributes or {}), **more})
        return self.tracer.start_as_current_span(name, context=context, kind=kind or SpanKind.INTERNAL,
                                                 attributes=attrs, record_exception=True,
                                                 set_status_on_exception=True)

    def server_span(self, name: str, attributes: Mapping[str, Any], parent: Any = None) -> Any:
        """A span for work done for a client (a command), parented on the client's trace."""
        return self.span(name, attributes, kind=SpanKind.SERVER, context=parent)

    @staticmethod
    def failed(span: Any, reason: str | None) -> None:
        """Mark `span` as an error with `reason` (a failed swap is a result, not an exception)."""
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, reason or None))

    # ------------------------------------------------------------------ metrics

    def record_swap(self, *, domain: str, key: str, provider: str, outcome: str, duration_s: float,
                    operation: str = "swap") -> None:
        if not self._shutdown:
            self.instruments.swap(_value(domain), key, provider, operation, outcome, max(0.0, float(duration_s)))

    def record_health(self, *, domain: str, key: str, provider: str, status: str, latency_ms: float | None) -> None:
        if not self._shutdown:
            seconds = None if latency_ms is None else max(0.0, float(latency_ms)) / 1000.0
            self.instruments.health(_value(domain), key, provider, _value(status), seconds)

    def record_sync(self, *, source: str, uri: str, outcome: str, error_kind: str | None, duration_s: float) -> None:
        if not self._shutdown:
            self.instruments.sync(source, uri, outcome, error_kind, max(0.0, float(duration_s)))

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
        self.instruments.observe("oneiric.resolutions", lambda: self._resolutions(DOMAIN))
        self.instruments.observe_upstream("oneiric_resolution_total", lambda: self._resolutions("domain"))

    def _resolutions(self, attribute: str) -> Iterable[tuple[float, dict[str, str]]]:
        source = self._resolution_source
        if source is None:
            return []
        counts = dict(source())
        return [(int(count), {attribute: _value(domain)})
                for domain, count in sorted(counts.items(), key=lambda kv: str(kv[0]))]

    def observe_journal_head(self, source: Callable[[], int | None]) -> None:
        """Publish `oneiric.journal.head_id`, the id of the journal head the host last
        published (`source()`, None before the first): a collector that keeps it can tell
        when the journal later ends before it (a truncation, see journal_chain.py)."""

        def observe() -> list[tuple[float, dict]]:
            head = source()
            return [] if head is None else [(int(head), {})]

        self.instruments.observe("oneiric.journal.head_id", observe)

    def observe_store(self, path: Path) -> None:
        """Publish `oneiric.store.size`: the store file and its write-ahead log, in bytes."""

        def observe() -> list[tuple[float, dict]]:
            total = 0
            for file in (path, path.with_name(path.name + "-wal")):
                try:
                    total += file.stat().st_size
                except OSError:
                    pass
            return [(total, {})]

        self.instruments.observe("oneiric.store.size", observe)

    def observe_lifecycle(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """`oneiric.lifecycle.component.count` from `source()` ({(domain, state): keys})."""
        self.instruments.observe("oneiric.lifecycle.component.count", lambda: [
            (n, {DOMAIN: d, "oneiric.lifecycle.state": s}) for (d, s), n in sorted(source().items())])
        self.instruments.observe_upstream("oneiric_lifecycle_active_instances", lambda: [
            (n, {"domain": d}) for (d, s), n in sorted(source().items()) if s == "ready"])

    def observe_activity(self, source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """`oneiric.activity.component.count` from `source()` ({(domain, state): keys}, the
        keys that are not active)."""
        self.instruments.observe("oneiric.activity.component.count", lambda: [
            (n, {DOMAIN: d, "oneiric.activity.state": s}) for (d, s), n in sorted(source().items())])
        for name, state in (("oneiric_activity_paused_components", "paused"),
                            ("oneiric_activity_draining_components", "draining")):
            self.instruments.observe_upstream(name, self._in_state(source, state))

    @staticmethod
    def _in_state(source: Callable[[], Mapping[tuple[str, str], int]],
                  state: str) -> Callable[[], list[tuple[float, dict[str, str]]]]:
        """The upstream points of one activity state: (keys, {"domain": d}) per domain."""
        return lambda: [(n, {"domain": d}) for (d, s), n in sorted(source().items()) if s == state]

    def observe_breakers(self, source: Callable[[], Mapping[str, str]]) -> None:
        """`oneiric.remote.breaker.state` from `source()` ({source name: breaker state})."""
        states = ("closed", "open", "half-open")
        self.instruments.observe("oneiric.remote.breaker.state", lambda: [
            (1 if state == current else 0, {SOURCE: name, "oneiric.remote.breaker.state": state})
            for name, current in sorted(source().items()) for state in states])

    def set_journal_rows(self, rows: int | None) -> None:
        """How many events the journal holds now (counted by the engine at start and after
        each prune); every journaled event seen by `on_event` adds one."""
        self._journal_rows = rows

    def _observe_journal_rows(self) -> list[tuple[float, dict]]:
        rows = self._journal_rows
        return [] if rows is None else [(rows, {})]

    # ------------------------------------------------------------------ journal events

    def on_event(self, event: Any) -> None:
        """A journal event (the engine's bus calls this inline, in the emitter's context):
        counted where a metric follows it, and emitted as a log record."""
        if self._shutdown:
            return
        if event.id is not None and self._journal_rows is not None:
            self._journal_rows += 1
        kind = event.kind
        if kind == "activity-changed":
            data = event.data or {}
            self.instruments.activity_change(_value(event.domain), data.get("from"), str(data.get("to") or ""))
        elif kind == "circuit-open":
            self.instruments.breaker_open(str((event.data or {}).get("source") or event.actor or ""))
        if self._logger is not None:
            self._log(event)

    def _log(self, event: Any) -> None:
        number, text = _SEVERITY.get(_value(event.severity), (9, "INFO"))
        attributes = clean_attributes({
            "oneiric.event.kind": event.kind, "oneiric.event.id": event.id, **component(event.domain, event.key,
                                                                                        event.provider),
            "enduser.id": event.actor, "oneiric.event.outcome": event.outcome,
            "oneiric.event.duration": None if event.duration_ms is None else event.duration_ms / 1000.0,
        })
        if event.data:
            try:
                data = json.dumps(event.data, default=str, sort_keys=True)
            except (TypeError, ValueError):
                data = str(event.data)
            attributes["oneiric.event.data"] = data[:EVENT_DATA_MAX]
        from opentelemetry._logs import SeverityNumber

        self._logger.emit(timestamp=int(event.ts * 1e9), observed_timestamp=time.time_ns(),
                          severity_number=SeverityNumber(number), severity_text=text, body=event.message,
                          attributes=attributes, event_name=event.kind)

    # ------------------------------------------------------------------ reading

    def status(self) -> TelemetryStatus:
        """How export is doing now (see telemetry_config.TelemetryStatus)."""
        config = self.config
        if config.disabled:
            return TelemetryStatus(self.exporter, None, "disabled")
        destination = config.destination()
        if self.warning == OTLP_MISSING:
            return TelemetryStatus("otlp", destination, "unavailable", OTLP_MISSING,
                                   marker="telemetry: otlp not installed")
        if self.exporter == "none":
            return TelemetryStatus("none", None, "off", self.warning)
        problem, failing, since, last = self.watch.snapshot()
        if problem:
            return TelemetryStatus(self.exporter, destination, "failing", problem, marker="telemetry: export failing",
                                   since=since, failing=failing, last_export_at=last)
        return TelemetryStatus(self.exporter, destination, "exporting", last_export_at=last)

    @property
    def problem(self) -> str | None:
        return self.status().problem

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
                    if isinstance(metric.data, Histogram):
                        sums = out.setdefault(metric.name, [])
                        counts = out.setdefault(metric.name + ".count", [])
                        for point in metric.data.data_points:  # HistogramDataPoints
                            attrs = dict(point.attributes or {})
                            sums.append((attrs, float(point.sum)))
                            counts.append((dict(attrs), float(point.count)))
                    else:
                        values = out.setdefault(metric.name, [])
                        for number in metric.data.data_points:
                            value = getattr(number, "value", None)
                            if value is not None:
                                values.append((dict(number.attributes or {}), float(value)))
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
                    "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
                }
            )
        return out

    # ------------------------------------------------------------------ lifecycle

    def shutdown(self) -> None:
        """Flush exporters and stop; safe to call more than once. A signal whose last export
        failed is not flushed again (it would retry for the exporter's whole timeout)."""
        with self._lock:
            if self._shutdown:
                return
            try:
                self._final_metrics = self._collect()
            except Exception:  # noqa: BLE001 - a last snapshot is a courtesy, never a reason to hang
                self._final_metrics = {}
            self._shutdown = True
        self.watch.closing = True
        try:
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()
            if self.logger_provider is not None:
                self.logger_provider.shutdown()
        finally:
            self.meter_provider.shutdown()


def _value(value: Any) -> str:
    return str(getattr(value, "value", value) if value is not None else "")


__all__ = ["SPAN_BUFFER", "BoundedSpanExporter", "Telemetry", "clean_attributes", "component"]
