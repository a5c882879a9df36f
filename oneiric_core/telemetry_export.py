"""The exporters that leave the process, and a watch on whether they still work.

The OTLP exporters retry a failed export on their own threads and say so only through
`logging` (a line on stderr for every retry, with no handler configured). Here each one is
wrapped so that its results are counted: `ExportWatch` knows which signals failed their
last export and why, in one sentence (`problem`), and calls `on_change` when that sentence
changes, from the exporter's thread. The engine turns that into a journal event, a store
record that `oneiric status` reads and the console's header marker. The exporters' own log
lines are taken in as the reason while an export runs and not printed: the status says it,
once, instead of a line per retry.

When the telemetry shuts down, a signal whose last export failed is not flushed again (the
exporter would retry for up to its timeout, 10 s, while the host is stopping).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .telemetry_config import SIGNALS, TelemetryConfig

# The loggers the OTLP/HTTP exporters write their failures to (opentelemetry-exporter-otlp-proto-http).
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.common.http",
)

_local = threading.local()


class _TakeExportLogs(logging.Filter):
    """While an export runs on this thread, its log lines are its failure's reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        box = getattr(_local, "box", None)
        if box is None:
            return True
        with contextlib.suppress(Exception):
            box.append(record.getMessage())
        return False


_FILTER = _TakeExportLogs()
_installed = False


def _install_filter() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)


@contextlib.contextmanager
def _capturing() -> Iterator[list[str]]:
    box: list[str] = []
    previous = getattr(_local, "box", None)
    _local.box = box
    try:
        yield box
    finally:
        _local.box = previous


def reason_from(messages: Sequence[str]) -> str | None:
    """A few words out of the exporter's log lines (`connection refused`, `HTTP 404 Not
    Found`); None when they do not say (the exporter's last line is then only "due to
    timeout, max retries or shutdown")."""
    text = " ".join(messages)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\][]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    code = re.search(r"code: (\d{3}), reason: ([^,\n]*)", text)
    if code:
        return f"HTTP {code.group(1)} {code.group(2).strip()}".strip()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the endpoint closed the connection without answering"
    if "Read timed out" in text or "ReadTimeout" in text:
        return "the endpoint did not answer in time"
    return None


def diagnose(url: str) -> str:
    """Why exports to `url` fail when the exporter did not say: an empty OTLP request of our
    own (telemetry_config._probe), on the exporter's thread, once per failure."""
    from .telemetry_config import _probe

    found = _probe(url, 2.0)
    return found or "the export did not complete within the exporter's timeout"


class ExportWatch:
    """Which signals' last export failed, and since when; thread-safe."""

    def __init__(self, destination: str | None, on_change: Callable[[], None] | None = None) -> None:
        self.destination = destination
        self._on_change = on_change
        self._lock = threading.Lock()
        self.failing: dict[str, str] = {}  # signal -> reason
        self.since: float | None = None
        self.last_ok_at: float | None = None
        self.closing = False

    def record(self, signal: str, ok: bool, messages: Sequence[str], url: str | None = None) -> None:
        reason = None if ok else reason_from(messages)
        if not ok and reason is None:
            known = self.failing.get(signal)
            reason = known or (diagnose(url) if url else "the endpoint did not accept the export")
        with self._lock:
            before = self._problem()
            if ok:
                self.failing.pop(signal, None)
                self.last_ok_at = time.time()
            else:
                self.failing[signal] = reason or ""
            if not self.failing:
                self.since = None
            elif self.since is None:
                self.since = time.time()
            changed = self._problem() != before
        if changed and self._on_change is not None:
            try:
                self._on_change()
            except Exception as exc:  # noqa: BLE001 - an exporter thread must survive its listener
                print(f"oneiric: telemetry status listener failed: {exc}", file=sys.stderr)

    def problem(self) -> str | None:
        with self._lock:
            return self._problem()

    def _problem(self) -> str | None:
        if not self.failing:
            return None
        signals = [s for s in SIGNALS if s in self.failing]
        reasons = sorted(set(self.failing.values()))
        since = time.strftime("%H:%M:%S", time.localtime(self.since or time.time()))
        return (f"exporting {', '.join(signals)} to {self.destination} fails since {since}: {'; '.join(reasons)}; "
                "telemetry is kept in memory and each export is retried")

    def snapshot(self) -> tuple[str | None, list[str], float | None, float | None]:
        """(problem, failing signals, failing since, last good export), read together."""
        with self._lock:
            return (self._problem(), [s for s in SIGNALS if s in self.failing], self.since, self.last_ok_at)

    def skip(self, signal: str) -> bool:
        """At shutdown, a signal that is failing is not exported once more."""
        return self.closing and signal in self.failing


class WatchedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, watch: ExportWatch, url: str | None = None) -> None:
        self._inner, self._watch, self._url = inner, watch, url

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self._watch.skip("traces"):
            return SpanExportResult.FAILURE
        with _capturing() as box:
            try:
                result = self._inner.export(spans)
            except Exception as exc:  # noqa: BLE001 - reported as the signal's failure
                box.append(f"{type(exc).__name__}: {exc}")
                result = SpanExportResult.FAILURE
        self._watch.record("traces", result == SpanExportResult.SUCCESS, box, self._url)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class WatchedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, watch: ExportWatch, url: str | None = None) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self._inner, self._watch, self._url = inner, watch, url

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if self._watch.skip("metrics"):
            return MetricExportResult.FAILURE
        with _capturing() as box:
            try:
                result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception as exc:  # noqa: BLE001 - reported as the signal's failure
                box.append(f"{type(exc).__name__}: {exc}")
                result = MetricExportResult.FAILURE
        self._watch.record("metrics", result == MetricExportResult.SUCCESS, box, self._url)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def watched_log_exporter(inner: Any, watch: ExportWatch, url: str | None = None) -> Any:
    """The log exporter, wrapped like the others (the logs SDK is imported only for otlp)."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class WatchedLogExporter(LogRecordExporter):
        def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
            if watch.skip("logs"):
                return LogRecordExportResult.FAILURE
            with _capturing() as box:
                try:
                    result = inner.export(batch)
                except Exception as exc:  # noqa: BLE001 - reported as the signal's failure
                    box.append(f"{type(exc).__name__}: {exc}")
                    result = LogRecordExportResult.FAILURE
            watch.record("logs", result == LogRecordExportResult.SUCCESS, box, url)
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return WatchedLogExporter()


class Exporters:
    """What `config` exports to, built once: a span exporter, a metric exporter and a log
    exporter (each None when that signal is not exported), and the watch over them."""

    def __init__(self, config: TelemetryConfig, watch: ExportWatch) -> None:
        self.watch = watch
        self.spans: Any = None
        self.metrics: Any = None
        self.logs: Any = None
        self.batched = config.exporter == "otlp"  # a network export must never sit on the hot path
        if config.exporter == "console":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            # Bind the stream now (the SDK defaults bind sys.stdout at import time).
            self.spans = ConsoleSpanExporter(out=sys.stdout)
            self.metrics = ConsoleMetricExporter(out=sys.stdout)
            self.logs = ConsoleLogRecordExporter(out=sys.stdout)
        elif config.exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _install_filter()
            timeout = config.export_timeout_s
            urls = config.endpoints
            self.spans = WatchedSpanExporter(OTLPSpanExporter(endpoint=urls["traces"], timeout=timeout), watch,
                                             urls["traces"])
            self.metrics = WatchedMetricExporter(OTLPMetricExporter(endpoint=urls["metrics"], timeout=timeout), watch,
                                                 urls["metrics"])
            self.logs = watched_log_exporter(OTLPLogExporter(endpoint=urls["logs"], timeout=timeout), watch,
                                             urls["logs"])


__all__ = ["EXPORTER_LOGGERS", "ExportWatch", "Exporters", "diagnose", "reason_from"]
