"""Telemetry: private OTel providers; metrics by the semantic conventions (and upstream's names
on request); spans, metrics and logs at a real OTLP/HTTP receiver (tests/otlp_receiver.py,
protobuf decoded with opentelemetry-proto); OTEL_* over app.yml; a missing or failing
exporter in status, config validate and the journal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace

from oneiric_core.domains import Domain
from oneiric_core.settings import TelemetryOptions
from oneiric_core.telemetry import SPAN_BUFFER, Telemetry
from oneiric_core.telemetry_config import OTLP_MISSING, TelemetryConfig
from oneiric_core.telemetry_metrics import METRICS, UPSTREAM
from oneiric_core.trace_context import NO_SPAN
from tests.helpers import FAST_APP, demo_copy, until
from tests.otlp_receiver import Receiver

REPO = Path(__file__).resolve().parents[1]
SPAN_KIND_SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's OTEL_* settings must not change what these tests see."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def tel():
    t = Telemetry()
    yield t
    t.shutdown()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def points(m: dict, name: str) -> dict[tuple, float]:
    """name -> {sorted attribute items: value}, for order-independent comparisons."""
    return {tuple(sorted(attrs.items())): value for attrs, value in m.get(name, [])}


def attrs(**values: str) -> tuple:
    return tuple(sorted((f"oneiric.{k.replace('__', '.')}", v) for k, v in values.items()))


def otlp_settings(tmp_path: Path, url: str, extra: str = "", *, base: str = FAST_APP) -> Path:
    settings = demo_copy(tmp_path / "otlp")  # not tmp_path/settings: run_cli's demo copy is there
    (settings / "app.yml").write_text(base + f"telemetry:\n  exporter: otlp\n  endpoint: {url}\n"
                                             "  service_name: from-app-yml\n" + extra)
    return settings


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- metrics, in memory ------------------------------------------------------------------------------

def test_swap_metrics_are_named_by_the_semantic_conventions(tel: Telemetry) -> None:
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_s=0.010)
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_s=0.030)
    tel.record_swap(domain=Domain.SERVICE, key="queue", provider="kafka", outcome="rolled-back", duration_s=0.0055)
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="refused", duration_s=0.0)
    m = tel.metrics()
    ok = attrs(domain="adapter", key="cache", provider="redis", swap__operation="swap", swap__outcome="complete")
    back = attrs(domain="service", key="queue", provider="kafka", swap__operation="swap",
                 swap__outcome="rolled-back")
    refused = attrs(domain="adapter", key="cache", provider="redis", swap__operation="swap",
                    swap__outcome="refused")
    assert points(m, "oneiric.swaps") == {ok: 2.0, back: 1.0, refused: 1.0}
    # durations in seconds; histograms leave the key out; a refused swap built nothing, so no duration
    ok_h = attrs(domain="adapter", provider="redis", swap__operation="swap", swap__outcome="complete")
    back_h = attrs(domain="service", provider="kafka", swap__operation="swap", swap__outcome="rolled-back")
    assert points(m, "oneiric.swap.duration") == pytest.approx({ok_h: 0.040, back_h: 0.0055})
    assert points(m, "oneiric.swap.duration.count") == {ok_h: 2.0, back_h: 1.0}
    assert points(m, "oneiric.swap.rollbacks") == {attrs(domain="service", key="queue", provider="kafka"): 1.0}
    assert not any(name.endswith(("_ms", "_total")) for name in m)  # no unit and no _total in a name
    # without upstream_names, none of upstream's names is exported
    assert not any(name.startswith("oneiric_") for name in m)


def test_health_metrics_count_by_status_and_time_in_seconds(tel: Telemetry) -> None:
    tel.record_health(domain="adapter", key="db", provider="pg", status="ok", latency_ms=2.0)
    tel.record_health(domain="adapter", key="db", provider="pg", status="ok", latency_ms=4.0)
    tel.record_health(domain="adapter", key="db", provider="pg", status="failed", latency_ms=None)
    m = tel.metrics()
    ok = attrs(domain="adapter", key="db", provider="pg", health__status="ok")
    failed = attrs(domain="adapter", key="db", provider="pg", health__status="failed")
    assert points(m, "oneiric.health.checks") == {ok: 2.0, failed: 1.0}
    ok_h = attrs(domain="adapter", provider="pg", health__status="ok")
    assert points(m, "oneiric.health.check.duration") == pytest.approx({ok_h: 0.006})
    assert points(m, "oneiric.health.check.duration.count") == {ok_h: 2.0}


def test_resolutions_are_read_from_the_source_on_collection(tel: Telemetry) -> None:
    counts = {"adapter": 0, Domain.SERVICE: 0}
    calls = []

    def source() -> dict:
        calls.append(1)
        return counts

    tel.observe_resolutions(source)
    assert calls == []  # nothing happens until metrics are collected
    for _ in range(1000):  # the engine's hot path: a plain int bump
        counts["adapter"] += 1
    counts[Domain.SERVICE] = 7
    m = tel.metrics()
    assert len(calls) == 1
    assert points(m, "oneiric.resolutions") == {attrs(domain="adapter"): 1000.0, attrs(domain="service"): 7.0}
    counts["adapter"] += 5
    assert points(tel.metrics(), "oneiric.resolutions")[attrs(domain="adapter")] == 1005.0
    tel.observe_resolutions(lambda: {"task": 3})  # a later call replaces the source (no duplicate instrument)
    assert attrs(domain="task") in points(tel.metrics(), "oneiric.resolutions")


def test_broken_resolution_source_does_not_break_metrics(tel: Telemetry) -> None:
    tel.observe_resolutions(lambda: 1 / 0)
    tel.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
    m = tel.metrics()
    assert "oneiric.swaps" in m
    assert m.get("oneiric.resolutions", []) == []


def test_upstream_names_are_exported_too_when_asked() -> None:
    from oneiric_core.events import Event, Severity

    t = Telemetry(TelemetryConfig(upstream_names=True))
    try:
        t.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_s=0.25)
        t.record_swap(domain="adapter", key="cache", provider="bad", outcome="rolled-back", duration_s=0.5)
        t.record_health(domain="adapter", key="cache", provider="redis", status="failed", latency_ms=3.0)
        t.record_sync(source="acme", uri="https://x/m.json", outcome="failed", error_kind="signature",
                      duration_s=0.1)
        t.observe_resolutions(lambda: {"adapter": 4})
        t.observe_activity(lambda: {("adapter", "paused"): 2})
        t.on_event(Event("activity-changed", "paused", Severity.WARNING, Domain.ADAPTER, "cache",
                         data={"from": "active", "to": "paused"}))
        t.on_event(Event("activity-changed", "resumed", Severity.INFO, Domain.ADAPTER, "cache",
                         data={"from": "paused", "to": "active"}))
        t.on_event(Event("circuit-open", "open", Severity.WARNING, data={"source": "acme"}))
        m = t.metrics()
        assert points(m, "oneiric_lifecycle_swap_total") == {
            (("domain", "adapter"), ("key", "cache"), ("outcome", "success"), ("provider", "redis")): 1.0,
            (("domain", "adapter"), ("key", "cache"), ("outcome", "rollback"), ("provider", "bad")): 1.0}
        # upstream's scale: milliseconds
        assert points(m, "oneiric_lifecycle_swap_duration_ms")[
            (("domain", "adapter"), ("outcome", "success"), ("provider", "redis"))] == pytest.approx(250.0)
        assert points(m, "oneiric_lifecycle_health_check_failures_total") == {
            (("domain", "adapter"), ("key", "cache"), ("provider", "redis")): 1.0}
        assert points(m, "oneiric_remote_sync_failure_total") == {
            (("error", "signature"), ("url", "https://x/m.json")): 1.0}
        assert points(m, "oneiric_resolution_total") == {(("domain", "adapter"),): 4.0}
        assert points(m, "oneiric_activity_paused_components") == {(("domain", "adapter"),): 2.0}
        assert points(m, "oneiric_activity_pause_events_total") == {
            (("domain", "adapter"), ("state", "paused")): 1.0, (("domain", "adapter"), ("state", "resumed")): 1.0}
        assert points(m, "oneiric_circuit_open_total") == {(("circuit", "acme"),): 1.0}
        # ours are still there, beside them
        assert points(m, "oneiric.remote.breaker.opens") == {((("oneiric.remote.source", "acme")),): 1.0}
    finally:
        t.shutdown()


def test_the_documented_metric_table_matches_the_code() -> None:
    doc = (REPO / "docs" / "telemetry.md").read_text()
    rows = {cells[0].strip("`"): cells for line in doc.splitlines() if line.startswith("| `")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for spec in METRICS:
        row = rows.get(spec.name)
        assert row is not None, f"docs/telemetry.md has no row for {spec.name}"
        assert row[1] == spec.instrument and row[2] == f"`{spec.unit}`", row
        for attribute in spec.attributes:
            assert attribute in row[3], (spec.name, attribute)
        for name in spec.upstream:
            assert f"`{name}`" in row[5], (spec.name, name)
    for up in UPSTREAM:
        row = rows.get(up.name)
        assert row is not None, f"docs/telemetry.md has no row for {up.name}"
        assert row[1:] == [up.instrument, ", ".join(up.attributes), f"`{up.source}`", up.note], row


# -- spans, in memory -----------------------------------------------------------------------------------

def test_spans_with_attributes_and_error_status(tel: Telemetry) -> None:
    with tel.span("swap", domain=Domain.ADAPTER, key="cache", attempt=2, ratio=0.5, forced=False, note=None) as s:
        assert s.is_recording()
        with tel.span("activate", {"oneiric.provider": "redis"}):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with tel.span("health", key="db"):
            raise RuntimeError("boom")
    spans = tel.recent_spans()
    assert [s["name"] for s in spans] == ["activate", "swap", "health"]
    activate, swap, health = spans
    assert swap["attributes"] == {"domain": "adapter", "key": "cache", "attempt": 2, "ratio": 0.5, "forced": False}
    assert activate["attributes"] == {"oneiric.provider": "redis"}
    assert swap["status"] == "unset" and swap["parent_id"] is None
    assert activate["parent_id"] == swap["span_id"] and activate["trace_id"] == swap["trace_id"]
    assert swap["end_ns"] >= swap["start_ns"] > 0 and swap["duration_ms"] >= 0
    assert health["status"] == "error" and "boom" in health["status_message"]
    assert [s["name"] for s in tel.recent_spans(limit=1)] == ["health"]
    assert tel.recent_spans(limit=0) == []


def test_with_nothing_to_export_no_span_is_made() -> None:
    t = Telemetry(TelemetryConfig())  # what the engine builds for `exporter: none`
    try:
        assert not t.tracing
        assert t.span("lifecycle.swap", {"oneiric.key": "cache"}) is NO_SPAN
        with t.span("x") as span:
            span.set_attribute("a", 1)
        assert t.recent_spans() == []
        t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
        assert "oneiric.swaps" in t.metrics()  # metrics stay in memory
        assert t.status().state == "off" and t.status().marker is None
    finally:
        t.shutdown()


def test_span_buffer_is_bounded(tel: Telemetry) -> None:
    for i in range(SPAN_BUFFER + 120):
        with tel.span("op", i=i):
            pass
    spans = tel.recent_spans(limit=10_000)
    assert SPAN_BUFFER == 500 and len(spans) == 500
    assert spans[0]["attributes"]["i"] == 120 and spans[-1]["attributes"]["i"] == 619


def test_instances_are_isolated_and_globals_untouched() -> None:
    global_meter = otel_metrics.get_meter_provider()
    global_tracer = otel_trace.get_tracer_provider()
    a, b = Telemetry(), Telemetry()
    try:
        a.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_s=0.001)
        a.observe_resolutions(lambda: {"adapter": 4})
        with a.span("only-a"):
            pass
        b.record_health(domain="service", key="q", provider="k", status="ok", latency_ms=1.0)
        ma, mb = a.metrics(), b.metrics()
        assert "oneiric.swaps" in ma and "oneiric.health.checks" not in ma
        assert "oneiric.health.checks" in mb and "oneiric.swaps" not in mb
        assert "oneiric.resolutions" not in mb
        assert [s["name"] for s in a.recent_spans()] == ["only-a"]
        assert b.recent_spans() == []
    finally:
        a.shutdown()
        b.shutdown()
    assert otel_metrics.get_meter_provider() is global_meter
    assert otel_trace.get_tracer_provider() is global_tracer


def test_unknown_exporter_warns_and_stays_in_memory() -> None:
    t = Telemetry(TelemetryConfig(exporter="prometheus"))
    try:
        assert t.exporter == "none" and "unknown telemetry exporter 'prometheus'" in t.warning
        t.record_health(domain="adapter", key="k", provider="p", status="ok", latency_ms=1.0)
        assert "oneiric.health.checks" in t.metrics()
    finally:
        t.shutdown()


def test_console_exporter_prints_spans_metrics_and_logs_on_shutdown(capsys: pytest.CaptureFixture[str]) -> None:
    from oneiric_core.events import Event, Severity

    t = Telemetry(TelemetryConfig(exporter="console", service_name="oneiric-test"))
    t.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_s=0.003)
    with t.span("console-span", key="cache"):
        t.on_event(Event("swap-complete", "adapter/cache swapped", Severity.INFO, Domain.ADAPTER, "cache"))
    t.shutdown()
    out = capsys.readouterr().out
    assert "oneiric.swaps" in out and "oneiric.swap.duration" in out
    assert "console-span" in out
    assert "adapter/cache swapped" in out and '"event_name": "swap-complete"' in out
    assert "oneiric-test" in out  # the resource's service.name


def test_shutdown_twice_and_use_after_shutdown() -> None:
    t = Telemetry()
    t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
    with t.span("before"):
        pass
    t.shutdown()
    t.shutdown()
    # recording after shutdown is a harmless no-op; the last snapshot stays readable
    t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
    t.record_health(domain="adapter", key="k", provider="p", status="ok", latency_ms=1.0)
    with t.span("after"):
        pass
    assert list(points(t.metrics(), "oneiric.swaps").values()) == [1.0]
    assert [s["name"] for s in t.recent_spans()] == ["before"]


# -- configuration: OTEL_* over app.yml ---------------------------------------------------------------

def test_the_otel_environment_wins_over_app_yml() -> None:
    options = TelemetryOptions(exporter="otlp", endpoint="http://from-app:4318", service_name="from-app-yml")
    plain = TelemetryConfig.resolve(options, {})
    assert plain.service_name == "from-app-yml" and plain.export_interval_s == 60.0
    assert plain.endpoints == {s: f"http://from-app:4318/v1/{s}" for s in ("traces", "metrics", "logs")}
    assert plain.destination() == "http://from-app:4318" and not plain.disabled

    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%2Cb",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
           "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example/ingest",
           "OTEL_METRIC_EXPORT_INTERVAL": "1500"}
    config = TelemetryConfig.resolve(options, env)
    assert config.service_name == "from-env"
    assert config.resource == {"deployment.environment": "prod", "team": "a,b"}
    assert config.endpoints == {"traces": "http://collector:4318/v1/traces",
                                "metrics": "http://collector:4318/v1/metrics", "logs": "https://logs.example/ingest"}
    assert config.export_interval_s == 1.5
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in config.endpoint_source
    # service.name in OTEL_RESOURCE_ATTRIBUTES counts when OTEL_SERVICE_NAME is not set
    assert TelemetryConfig.resolve(options, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=attrs"}).service_name == "attrs"
    # nothing set anywhere: the OTLP default
    assert TelemetryConfig.resolve(TelemetryOptions(exporter="otlp"), {}).destination() == "http://localhost:4318"
    # a value that cannot be used says so, and the default holds
    bad = TelemetryConfig.resolve(options, {"OTEL_METRIC_EXPORT_INTERVAL": "soon", "OTEL_RESOURCE_ATTRIBUTES": "x"})
    assert bad.export_interval_s == 60.0 and len(bad.notes) == 2
    assert any("OTEL_METRIC_EXPORT_INTERVAL='soon'" in note for note in bad.notes)


def test_the_resource_carries_the_environment_service_name_not_app_yml(receiver: Receiver) -> None:
    options = TelemetryOptions(exporter="otlp", endpoint=receiver.url, service_name="from-app-yml")
    t = Telemetry(TelemetryConfig.resolve(options, {"OTEL_SERVICE_NAME": "from-env",
                                                    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod"}))
    with t.span("one"):
        pass
    t.shutdown()
    (span,) = receiver.spans()
    assert span.resource["service.name"] == "from-env" and span.resource["deployment.environment"] == "prod"


def test_otel_sdk_disabled_records_and_exports_nothing(receiver: Receiver) -> None:
    from oneiric_core.events import Event

    options = TelemetryOptions(exporter="otlp", endpoint=receiver.url)
    t = Telemetry(TelemetryConfig.resolve(options, {"OTEL_SDK_DISABLED": "true"}))
    assert not t.tracing and t.span("x") is NO_SPAN
    t.on_event(Event("swap-complete", "done"))
    t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
    assert t.status().state == "disabled"
    assert "OTEL_SDK_DISABLED" in t.status().describe()
    t.shutdown()
    assert receiver.spans() == [] and receiver.logs() == [] and receiver.metrics() == {}


# -- a real host, a real receiver ---------------------------------------------------------------------

async def test_a_swap_reaches_an_otlp_receiver_as_spans_metrics_and_logs(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from oneiric_core.engine import Engine

    monkeypatch.setenv("OTEL_SERVICE_NAME", "oneiric-under-test")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")  # not the 60 s default: metrics arrive while running
    engine = Engine(otlp_settings(tmp_path, receiver.url), state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        complete = await engine._swap_now("adapter", "cache", "sqlite")
        rolled = await engine._swap_now("adapter", "cache", "redis")  # the demo's unhealthy provider
        assert (complete.outcome.value, rolled.outcome.value) == ("complete", "rolled-back")
        # exported on the interval, before the host stops
        await until(lambda: "oneiric.swap.rollbacks" in receiver.metrics(), "metrics at the receiver")
        assert engine.telemetry_status().state == "exporting"
    finally:
        await engine.stop()
        rows = engine.store.count_journal()
        engine.close()

    spans = receiver.spans()
    swap = next(s for s in spans if s.name == "lifecycle.swap" and s.attributes["oneiric.provider"] == "sqlite")
    assert swap.parent_id == "" and swap.resource["service.name"] == "oneiric-under-test"
    assert swap.attributes == {
        "oneiric.domain": "adapter", "oneiric.key": "cache", "oneiric.provider": "sqlite",
        "oneiric.provider.source": "builtin", "oneiric.swap.from": "memory", "oneiric.swap.forced": False,
        "enduser.id": "tester", "oneiric.swap.outcome": "complete"}
    children = [s for s in spans if s.parent_id == swap.span_id]
    assert sorted(c.name for c in children) == sorted(
        ["lifecycle.build", "lifecycle.health_gate", "lifecycle.bind", "lifecycle.cleanup"])
    assert all(c.trace_id == swap.trace_id and c.attributes["oneiric.key"] == "cache" for c in children)
    gate = next(c for c in children if c.name == "lifecycle.health_gate")
    assert gate.attributes["oneiric.health.status"] == "ok"
    cleanup = next(c for c in children if c.name == "lifecycle.cleanup")
    assert cleanup.attributes["oneiric.provider"] == "memory"  # the provider being stopped
    failed = next(s for s in spans if s.name == "lifecycle.swap" and s.attributes["oneiric.provider"] == "redis")
    assert failed.status_code == 2 and "health check failed" in failed.status_message  # STATUS_CODE_ERROR
    assert failed.attributes["oneiric.swap.outcome"] == "rolled-back"
    assert {s.name for s in spans if s.parent_id == failed.span_id} == {"lifecycle.build", "lifecycle.health_gate"}
    activations = [s for s in spans if s.name == "lifecycle.activate"]
    assert len(activations) == 8 and {c.name for s in activations for c in spans if c.parent_id == s.span_id} == {
        "lifecycle.build", "lifecycle.health_gate", "lifecycle.bind"}

    metrics = receiver.metrics()
    for name, unit, kind in [("oneiric.swaps", "{swap}", "sum"), ("oneiric.swap.duration", "s", "histogram"),
                             ("oneiric.swap.rollbacks", "{rollback}", "sum"), ("oneiric.health.checks", "{check}",
                                                                               "sum"),
                             ("oneiric.health.check.duration", "s", "histogram"),
                             ("oneiric.resolutions", "{resolution}", "sum"),
                             ("oneiric.lifecycle.component.count", "{component}", "gauge"),
                             ("oneiric.journal.event.count", "{event}", "gauge"),
                             ("oneiric.store.size", "By", "gauge")]:
        assert (metrics[name].unit, metrics[name].kind) == (unit, kind), name
    durations = dict((tuple(sorted(a.items())), v) for a, v in metrics["oneiric.swap.duration"].points)
    swapped = durations[attrs(domain="adapter", provider="sqlite", swap__operation="swap", swap__outcome="complete")]
    assert 0 < swapped < 10  # seconds, not milliseconds
    assert complete.total_ms / 1000 == pytest.approx(swapped)
    assert metrics["oneiric.journal.event.count"].points == [({}, rows)]

    logs = receiver.logs()
    done = next(r for r in logs if r.event_name == "swap-complete" and "memory -> sqlite" in r.body)
    assert (done.trace_id, done.span_id) == (swap.trace_id, swap.span_id)  # emitted inside the swap span
    assert (done.severity_number, done.severity_text) == (9, "INFO")
    assert done.attributes["oneiric.key"] == "cache" and done.attributes["enduser.id"] == "tester"
    assert json.loads(done.attributes["oneiric.event.data"])["to"] == "sqlite"
    rollback = next(r for r in logs if r.event_name == "swap-rollback")
    assert (rollback.severity_number, rollback.severity_text) == (13, "WARN")
    assert rollback.trace_id == failed.trace_id
    started = next(r for r in logs if r.event_name == "host-started")
    assert started.trace_id == "" and started.span_id == ""  # no span was active: no ids
    assert {r.event_name for r in logs} >= {"host-started", "swap-started", "swap-complete", "swap-rollback",
                                           "host-stopped"}


async def test_a_clients_trace_continues_in_the_hosts_command_span(tmp_path: Path, receiver: Receiver) -> None:
    """The client (here: its own SDK tracer, as a program calling the Operator port would
    have) sends its traceparent with the request; the host's command span is its child."""
    from opentelemetry.sdk.trace import TracerProvider

    from oneiric_core.commands import Request
    from oneiric_core.engine import Engine
    from oneiric_core.operator_port import OverSocket
    from oneiric_core.wire import socket_path

    engine = Engine(otlp_settings(tmp_path, receiver.url), state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    client = TracerProvider().get_tracer("a-client")
    port = OverSocket(socket_path(engine.state_dir))

    def in_a_client_span():
        with client.start_as_current_span("client.swap") as span:
            result = port.exchange(Request("swap", {"domain": "adapter", "key": "cache", "provider": "sqlite",
                                                    "approve": True, "source": "test"}), wait=30)
            return span.get_span_context(), result

    try:
        context, result = await asyncio.to_thread(in_a_client_span)
        assert result.ok, result.message
        plain = await asyncio.to_thread(port.exchange, Request("probe", {"domain": "adapter", "key": "cache"}),
                                        wait=30)
        assert plain.ok, plain.message
    finally:
        await engine.stop()
        engine.close()
    spans = receiver.spans()
    command = next(s for s in spans if s.name == "host.command" and s.attributes["oneiric.command.kind"] == "swap")
    assert command.trace_id == format(context.trace_id, "032x")
    assert command.parent_id == format(context.span_id, "016x")
    assert command.kind == SPAN_KIND_SERVER
    assert command.attributes["oneiric.key"] == "cache" and command.attributes["oneiric.command.exit_code"] == 0
    assert isinstance(command.attributes["oneiric.command.id"], int)
    swap = next(s for s in spans if s.name == "lifecycle.swap")
    assert swap.parent_id == command.span_id and swap.trace_id == command.trace_id
    logs = [r for r in receiver.logs() if r.event_name == "swap-complete" and "-> sqlite" in r.body]
    assert [r.trace_id for r in logs] == [command.trace_id]
    # a request sent with no span active starts its own trace on the host, a probe in it
    probe = next(s for s in spans if s.name == "host.command" and s.attributes["oneiric.command.kind"] == "probe")
    assert probe.parent_id == "" and probe.trace_id != command.trace_id
    assert any(s.name == "health.probe" and s.parent_id == probe.span_id for s in spans)


async def test_a_remote_sync_and_a_probe_round_are_spans_with_their_metrics(
        tmp_path: Path, receiver: Receiver) -> None:
    from oneiric_core.engine import Engine

    demo_app = re.sub(r"(?m)^telemetry:\n(?:  .*\n)*", "", (REPO / "settings" / "app.yml").read_text())
    settings = otlp_settings(tmp_path, receiver.url, base=demo_app)  # the demo's own remote source
    settings_text = (settings / "app.yml").read_text()
    assert "remote:" in settings_text and settings_text.count("telemetry:") == 1
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        await engine.health.probe_all()
        engine.pause("adapter", "cache", note="maintenance")
        await engine.remote.sync_now("demo")
        metrics = engine.telemetry.metrics()
    finally:
        await engine.stop()
        engine.close()
    spans = receiver.spans()
    syncs = [s for s in spans if s.name == "remote.sync"]
    assert syncs and all(s.attributes["oneiric.remote.source"] == "demo" for s in syncs)
    first = syncs[0]  # the host's first sync: the manifest is fetched, verified and registered
    assert first.attributes["oneiric.remote.sync.outcome"] == "changed"
    assert {s.name for s in spans if s.parent_id == first.span_id} >= {"remote.fetch", "remote.verify",
                                                                       "remote.register"}
    manual = next(s for s in syncs if s.attributes["oneiric.remote.manual"])
    assert manual.attributes["oneiric.remote.sync.outcome"] == "unchanged"
    rounds = [s for s in spans if s.name == "health.round"]
    assert rounds and rounds[-1].attributes["oneiric.health.probes"] == 8
    assert points(metrics, "oneiric.remote.syncs")[
        (("oneiric.remote.source", "demo"), ("oneiric.remote.sync.outcome", "changed"))] == 1.0
    assert points(metrics, "oneiric.remote.breaker.state") == {
        (("oneiric.remote.breaker.state", state), ("oneiric.remote.source", "demo")): float(state == "closed")
        for state in ("closed", "open", "half-open")}
    assert points(metrics, "oneiric.activity.component.count") == {
        attrs(domain="adapter", activity__state="paused"): 1.0}
    assert points(metrics, "oneiric.activity.changes") == {attrs(domain="adapter", activity__state="paused"): 1.0}
    assert "oneiric.remote.sync.duration" in metrics


async def test_a_failing_endpoint_shows_in_status_journal_and_recovers(
        tmp_path: Path, receiver: Receiver, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from oneiric_core.engine import Engine

    for name in ("OTEL_METRIC_EXPORT_INTERVAL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"):
        monkeypatch.setenv(name, "200")  # every signal exported within 0.2 s
    receiver.answer = 404  # a collector that refuses every export
    settings = otlp_settings(tmp_path, receiver.url)
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        await until(lambda: engine.telemetry_status().state == "failing", "the export to fail", timeout=15)
        failed = await until(lambda: engine.journal(kinds="telemetry-export-failed"), "the failure journaled")
        assert "HTTP 404" in failed[0].message and receiver.url in failed[0].message
        status = await asyncio.to_thread(run_cli, "status", "--json", settings=settings)
        seen = status.json()["telemetry"]
        assert seen["state"] == "failing" and "metrics" in seen["failing"] and "HTTP 404" in seen["problem"]
        assert seen["marker"] == "telemetry: export failing"
        text = await asyncio.to_thread(run_cli, "status", settings=settings)
        line = next(ln for ln in text.stdout.splitlines() if ln.startswith("telemetry:"))
        assert "FAILING" in line and receiver.url in line, text
        receiver.answer = 200
        await engine._swap_now("adapter", "cache", "sqlite")  # spans and log records to export again
        await until(lambda: engine.journal(kinds="telemetry-export-recovered"), "the recovery journaled", timeout=15)
        assert engine.telemetry_status().state == "exporting" and engine.telemetry_problem is None
        assert len(engine.journal(kinds="telemetry-export-failed")) == 1  # once, not once per failed export
    finally:
        await engine.stop()
        engine.close()


class HangUp:
    """An endpoint that accepts each connection and closes it unanswered, counting them."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_shutdown_does_not_export_again_to_a_failing_endpoint() -> None:
    """The exporter retries a connection error for its whole timeout; once a signal is known
    to fail, the final flush at shutdown skips it, so a host with a broken collector stops as
    fast as one without. (Metrics every 60 s and flushes by hand: nothing exports on its own.)"""
    from oneiric_core.events import Event

    endpoint = HangUp()
    options = TelemetryOptions(exporter="otlp", endpoint=endpoint.url)
    t = Telemetry(TelemetryConfig.resolve(options, {}, export_timeout_s=0.5))
    try:
        with t.span("first"):
            t.on_event(Event("swap-complete", "first"))
        t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
        for provider in (t.tracer_provider, t.logger_provider, t.meter_provider):
            provider.force_flush()
        status = t.status()
        assert status.state == "failing" and status.failing == ["traces", "metrics", "logs"], status
        assert endpoint.url in status.problem and re.search(r"closed the connection|connection reset", status.problem)
        with t.span("second"):  # more to export at shutdown, of every signal
            t.on_event(Event("swap-complete", "second"))
        t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_s=0.001)
        before = endpoint.connections
    finally:
        t.shutdown()
        endpoint.close()
    assert before >= 3 and endpoint.connections == before  # nothing more was sent at shutdown


# -- a missing exporter package, config validate ----------------------------------------------------------

BLOCK_OTLP = """\
import importlib.abc, sys
class _NoOtlp(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry.exporter.otlp" or name.startswith("opentelemetry.exporter.otlp."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _NoOtlp())
"""


def without_otlp(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess in which the OTLP exporter package cannot be imported,
    as in an installation without the `otlp` extra."""
    site = tmp_path / "no-otlp"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCK_OTLP)
    return {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def test_otlp_not_installed_fails_config_validate_and_shows_in_status(tmp_path: Path, run_cli) -> None:
    settings = otlp_settings(tmp_path, "http://127.0.0.1:4318")
    env = without_otlp(tmp_path)
    check = run_cli("config", "validate", settings=settings, env=env)
    assert check.returncode == 1, check
    line = next(ln for ln in check.stdout.splitlines() if "telemetry.exporter" in ln)
    assert re.search(r"app\.yml:\d+:\d+: telemetry\.exporter: app\.yml sets telemetry\.exporter: otlp, but the "
                     r"opentelemetry-exporter-otlp-proto-http package is not installed", line), check
    assert "the host keeps its telemetry in memory and exports nothing" in check.stdout
    assert "Traceback" not in check.stderr
    status = run_cli("status", settings=settings, env=env)
    assert status.returncode == 0, status
    assert f"telemetry: {OTLP_MISSING}" not in status.stdout  # the line names the state first
    assert any(ln.startswith("telemetry: otlp") and "UNAVAILABLE" in ln and "not installed" in ln
               for ln in status.stdout.splitlines()), status
    assert run_cli("status", "--json", settings=settings, env=env).json()["telemetry"]["state"] == "unavailable"
    # with the package there, the same settings are valid (the endpoint is not probed here: see below)
    assert "not installed" not in run_cli("config", "validate", settings=settings).stdout


def test_a_host_without_the_otlp_package_journals_it_and_keeps_serving(tmp_path: Path, cli_env) -> None:
    settings = otlp_settings(tmp_path, "http://127.0.0.1:4318")
    script = textwrap.dedent(f"""
        import asyncio, json
        from oneiric_core.engine import Engine

        async def main():
            engine = Engine({str(settings)!r}, state_dir={str(tmp_path / 'state')!r}, actor="tester")
            await engine.start()
            try:
                status = engine.telemetry_status()
                result = await engine._swap_now("adapter", "cache", "sqlite")
                print(json.dumps({{"status": status.to_dict(), "swap": result.outcome.value,
                                  "events": [e.message for e in engine.journal(kinds="telemetry-unavailable")]}}))
            finally:
                await engine.stop()
                engine.close()

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**cli_env, **without_otlp(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["swap"] == "complete"
    assert out["status"]["state"] == "unavailable" and out["status"]["marker"] == "telemetry: otlp not installed"
    assert out["events"] == [f"telemetry: {OTLP_MISSING}"]


def test_config_validate_warns_of_an_endpoint_that_does_not_answer_and_passes(
        tmp_path: Path, run_cli, receiver: Receiver) -> None:
    port = free_port()
    settings = otlp_settings(tmp_path, f"http://127.0.0.1:{port}")
    down = run_cli("config", "validate", settings=settings)
    assert down.returncode == 0, down
    warning = next(ln for ln in down.stdout.splitlines() if ln.startswith("warning: telemetry:"))
    assert f"http://127.0.0.1:{port} (/v1/traces, /v1/metrics, /v1/logs; from app.yml telemetry.endpoint)" in warning
    assert "connection refused" in warning and "FAILING" in warning
    assert down.stdout.strip().endswith("every settings file is valid (see the warnings above).")
    assert run_cli("config", "validate", "--json", settings=settings).json()["warnings"] == [
        warning.removeprefix("warning: ")]
    # the environment's endpoint is the one checked
    up = run_cli("config", "validate", settings=settings, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert up.returncode == 0 and "warning" not in up.stdout, up
    assert receiver.requests["/v1/traces"], "the check posts a (empty) export request"
    # and a bad environment value is a warning too
    odd = run_cli("config", "validate", settings=settings,
                  env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_METRIC_EXPORT_INTERVAL": "soon"})
    assert odd.returncode == 0 and "warning: telemetry: OTEL_METRIC_EXPORT_INTERVAL='soon'" in odd.stdout, odd
