"""Where telemetry goes and how it is doing, worked out without importing OpenTelemetry.

`TelemetryConfig.resolve` reads app.yml's `telemetry:` section and lets the standard
`OTEL_*` environment variables win over it, as a deployment sets them per environment
(docs/telemetry.md lists them): OTEL_SDK_DISABLED, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT,
OTEL_METRIC_EXPORT_INTERVAL. The exporter's own variables (headers, timeout, compression,
certificates) are read by the OTLP exporter itself.

`TelemetryStatus` is the one answer every front door shows: `oneiric status` (a line and
`telemetry` in --json), the console's header (its `marker`) and the host's store record that
other processes read. `validate` is what `oneiric config validate` adds: an exporter that is
configured but not installed is a problem (exit 1: the settings ask for something this
installation cannot do); an endpoint that does not answer is a warning (exit 0: the
collector may be down now and the host retries).

Nothing here imports OpenTelemetry: the CLI's read commands use it and must stay quick.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

SIGNALS = ("traces", "metrics", "logs")
EXPORTERS = ("none", "console", "otlp")
OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"
OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http"
DEFAULT_ENDPOINT = "http://localhost:4318"
DEFAULT_INTERVAL_S = 60.0
DEFAULT_SERVICE = "oneiric"
OTLP_MISSING = (f"app.yml sets telemetry.exporter: otlp, but the {OTLP_PACKAGE} package is not installed "
                "(pip install 'oneiric-console[otlp]'); telemetry stays in memory and nothing is exported")

# The host's telemetry status in the store, read by `oneiric status` and attached consoles.
META_KEY = "telemetry"


def otlp_installed() -> bool:
    """Whether the OTLP/HTTP exporter can be imported, without importing it."""
    try:
        return importlib.util.find_spec(OTLP_MODULE) is not None
    except (ImportError, ValueError):  # a parent package is missing too
        return False


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def parse_resource_attributes(text: str) -> tuple[dict[str, str], list[str]]:
    """OTEL_RESOURCE_ATTRIBUTES (`key=value,key=value`, values percent-encoded): the
    attributes, and a note for each entry that is not of that form (it is skipped)."""
    attributes: dict[str, str] = {}
    skipped: list[str] = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            skipped.append(item.strip())
            continue
        attributes[key.strip()] = unquote(value.strip())
    return attributes, skipped


def signal_endpoint(signal: str, environ: Mapping[str, str], configured: str | None) -> tuple[str, str]:
    """The URL a signal is exported to, and where it came from: the per-signal variable as
    given, else OTEL_EXPORTER_OTLP_ENDPOINT or app.yml's `telemetry.endpoint` with
    `/v1/<signal>` added (kept when the URL already ends with it), else localhost:4318."""
    per_signal = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    if environ.get(per_signal, "").strip():
        return environ[per_signal].strip(), per_signal
    for base, source in ((environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip(), "OTEL_EXPORTER_OTLP_ENDPOINT"),
                         ((configured or "").strip(), "app.yml telemetry.endpoint"),
                         (DEFAULT_ENDPOINT, "the OTLP default")):
        if base:
            base = base.rstrip("/")
            return (base if base.endswith(f"/v1/{signal}") else f"{base}/v1/{signal}"), source
    raise AssertionError("unreachable")  # pragma: no cover - DEFAULT_ENDPOINT is never empty


@dataclass(frozen=True)
class TelemetryConfig:
    """Everything `Telemetry` needs to build its providers, settled once at host start."""

    exporter: str = "none"  # none | console | otlp (anything else: none, with a warning)
    service_name: str = DEFAULT_SERVICE
    resource: Mapping[str, str] = field(default_factory=dict)  # extra resource attributes
    endpoints: Mapping[str, str] = field(default_factory=dict)  # signal -> URL (otlp)
    endpoint_source: str = ""
    export_interval_s: float = DEFAULT_INTERVAL_S
    export_timeout_s: float | None = None  # None: the exporter's own (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s)
    disabled: bool = False  # OTEL_SDK_DISABLED=true: nothing recorded, nothing exported
    upstream_names: bool = False  # also export the metric names upstream Oneiric's runbooks query
    memory_spans: bool = False  # keep spans in memory even when nothing exports them (tests)
    notes: tuple[str, ...] = ()  # environment values that could not be used, in words

    @classmethod
    def resolve(cls, options: Any, environ: Mapping[str, str] | None = None, **overrides: Any) -> TelemetryConfig:
        """app.yml's telemetry options (settings.TelemetryOptions) with the OTEL_* variables
        of `environ` (default: this process's) taking precedence."""
        env = os.environ if environ is None else environ
        notes: list[str] = []
        resource, skipped = parse_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        if skipped:
            notes.append(f"OTEL_RESOURCE_ATTRIBUTES entries not of the form key=value were skipped: "
                         f"{', '.join(skipped)}")
        service = (env.get("OTEL_SERVICE_NAME", "").strip() or resource.pop("service.name", "").strip()
                   or getattr(options, "service_name", None) or DEFAULT_SERVICE)
        resource.pop("service.name", None)
        interval = DEFAULT_INTERVAL_S
        raw = env.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
        if raw:
            try:
                millis = float(raw)
                if not millis > 0:
                    raise ValueError
                interval = millis / 1000.0
            except ValueError:
                notes.append(f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} is not a positive number of milliseconds; "
                             f"metrics are exported every {DEFAULT_INTERVAL_S:g} s")
        configured = getattr(options, "endpoint", None)
        endpoints: dict[str, str] = {}
        sources: list[str] = []
        for signal in SIGNALS:
            url, source = signal_endpoint(signal, env, configured)
            endpoints[signal] = url
            if source not in sources:
                sources.append(source)
        values: dict[str, Any] = dict(
            exporter=str(getattr(options, "exporter", "none") or "none").strip().lower(),
            service_name=service, resource=resource, endpoints=endpoints, endpoint_source=", ".join(sources),
            export_interval_s=interval, disabled=_flag(env.get("OTEL_SDK_DISABLED")),
            upstream_names=bool(getattr(options, "upstream_names", False)), notes=tuple(notes),
        )
        values.update(overrides)
        return cls(**values)

    @property
    def exports(self) -> bool:
        """Whether anything leaves the process (an exporter other than none, not disabled)."""
        return not self.disabled and self.exporter in ("console", "otlp")

    def destination(self) -> str | None:
        """Where the data goes, in a few words: the common base URL of the three OTLP
        endpoints (or the three URLs), `stdout` for console, None for none."""
        if self.exporter == "console":
            return "stdout"
        if self.exporter != "otlp":
            return None
        urls = [self.endpoints.get(s, "") for s in SIGNALS]
        bases = {url.removesuffix(f"/v1/{s}") for url, s in zip(urls, SIGNALS, strict=True)}
        if len(bases) == 1 and all(url.endswith(f"/v1/{s}") for url, s in zip(urls, SIGNALS, strict=True)):
            return bases.pop()
        return ", ".join(f"{s} {url}" for s, url in zip(SIGNALS, urls, strict=True))

    def offline_status(self) -> TelemetryStatus:
        """What this configuration would do, for a process that does not host (no host runs)."""
        if self.disabled:
            return TelemetryStatus(self.exporter, None, "disabled")
        if self.exporter == "otlp" and not otlp_installed():
            return TelemetryStatus("otlp", self.destination(), "unavailable", OTLP_MISSING,
                                   marker="telemetry: otlp not installed")
        if self.exporter in ("console", "otlp"):
            return TelemetryStatus(self.exporter, self.destination(), "idle")
        return TelemetryStatus("none", None, "off")


@dataclass
class TelemetryStatus:
    """How telemetry is doing, in one place for `status`, the console header and the store.

    state: off (exporter none) | disabled (OTEL_SDK_DISABLED) | exporting | failing (the last
    export of some signal failed) | unavailable (configured, but the exporter is missing) |
    idle (configured; no host runs, so nothing is exported) | unknown (a live host recorded
    nothing)."""

    exporter: str
    destination: str | None
    state: str
    problem: str | None = None
    marker: str | None = None  # a few words for the console header; None when all is well
    since: float | None = None  # when the problem began
    failing: list[str] = field(default_factory=list)  # signals whose last export failed
    last_export_at: float | None = None

    def describe(self) -> str:
        """The `oneiric status` line."""
        where = f" to {self.destination}" if self.destination else ""
        if self.state == "off":
            return "telemetry: kept in memory, not exported (app.yml telemetry.exporter: none)"
        if self.state == "disabled":
            return "telemetry: off (OTEL_SDK_DISABLED=true)"
        if self.state == "idle":
            return f"telemetry: {self.exporter}{where}; no host is running, so nothing is exported"
        if self.state == "exporting":
            last = (f" (last export {time.strftime('%H:%M:%S', time.localtime(self.last_export_at))})"
                    if self.last_export_at else "")
            return f"telemetry: {self.exporter}{where}: exporting{last}"
        if self.state == "unknown":
            return f"telemetry: {self.problem}"
        return f"telemetry: {self.exporter}{where}: {self.state.upper()}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TelemetryStatus:
        def text(name: str) -> str | None:
            value = raw.get(name)
            return value if isinstance(value, str) else None

        since, last = raw.get("since"), raw.get("last_export_at")
        failing = raw.get("failing")
        return cls(text("exporter") or "none", text("destination"), text("state") or "unknown", text("problem"),
                   text("marker"), float(since) if isinstance(since, (int, float)) else None,
                   [s for s in failing if isinstance(s, str)] if isinstance(failing, list) else [],
                   float(last) if isinstance(last, (int, float)) else None)


@dataclass(frozen=True)
class Finding:
    """One thing `config validate` says about telemetry: an error fails it, a warning not."""

    severity: str  # error | warning
    message: str


def validate(config: TelemetryConfig, *, probe: bool = True, timeout_s: float = 2.0) -> list[Finding]:
    """The exporter is installed, and (`probe`) each OTLP endpoint answers an empty export
    request (a valid OTLP message that adds nothing) within `timeout_s`."""
    findings = [Finding("warning", note) for note in config.notes]
    if config.disabled or config.exporter != "otlp":
        return findings
    if not otlp_installed():
        return [*findings, Finding("error", OTLP_MISSING)]
    if not probe:
        return findings
    failures: dict[tuple[str, str], list[str]] = {}
    unreachable: dict[str, str] = {}  # base -> why: the other paths there are not tried again
    for signal in SIGNALS:
        url = config.endpoints[signal]
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        reason = unreachable.get(base) or _probe(url, timeout_s)
        if reason is not None:
            if not reason.startswith("HTTP "):
                unreachable[base] = reason
            failures.setdefault((base, reason), []).append(parts.path or "/")
    for (base, reason), paths in failures.items():
        findings.append(Finding("warning", f"the OTLP endpoint {base} ({', '.join(paths)}; from "
                                f"{config.endpoint_source}) does not accept exports: {reason}; a host would keep "
                                "its telemetry in memory, retry each export, and show it as FAILING in "
                                "'oneiric status' until it does"))
    return findings


def _probe(url: str, timeout_s: float) -> str | None:
    """None when `url` accepts an empty OTLP/HTTP protobuf request, else why not, as a noun
    phrase (`connection refused`, `HTTP 404 Not Found`)."""
    import httpx

    try:
        response = httpx.post(url, content=b"", headers={"Content-Type": "application/x-protobuf"},
                              timeout=timeout_s)
    except httpx.TimeoutException:
        return f"no answer within {timeout_s:g} s"
    except httpx.RemoteProtocolError:
        return "the endpoint closed the connection without answering"
    except httpx.HTTPError as exc:
        return _short_error(exc)
    if response.is_success:
        return None
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()


def _short_error(exc: BaseException) -> str:
    """`connection refused` and the like out of an exception chain, else its first line."""
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\][]+)", text)
    if match:
        return match.group(1).strip().lower()
    return (str(exc) or type(exc).__name__).splitlines()[0][:160]


__all__ = [
    "DEFAULT_ENDPOINT", "DEFAULT_INTERVAL_S", "EXPORTERS", "Finding", "META_KEY", "OTLP_MISSING", "OTLP_PACKAGE",
    "SIGNALS", "TelemetryConfig", "TelemetryStatus", "otlp_installed", "parse_resource_attributes",
    "signal_endpoint", "validate",
]
