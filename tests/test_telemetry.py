"""Telemetry: private OTel providers, metrics read back in memory, bounded spans, exporters."""

from __future__ import annotations

import importlib.util

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace

from oneiric_core.domains import Domain
from oneiric_core.telemetry import OTLP_MISSING, SPAN_BUFFER, Telemetry


@pytest.fixture
def tel():
    t = Telemetry()
    yield t
    t.shutdown()


def points(m: dict, name: str) -> dict[tuple, float]:
    """name -> {sorted attribute items: value}, for order-independent comparisons."""
    return {tuple(sorted(attrs.items())): value for attrs, value in m.get(name, [])}


def test_swaps_metrics(tel: Telemetry) -> None:
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_ms=10.0)
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_ms=30.0)
    tel.record_swap(domain=Domain.SERVICE, key="queue", provider="kafka", outcome="failed", duration_ms=5.5)
    m = tel.metrics()
    ok = (("domain", "adapter"), ("key", "cache"), ("outcome", "complete"), ("provider", "redis"))
    failed = (("domain", "service"), ("key", "queue"), ("outcome", "failed"), ("provider", "kafka"))
    assert points(m, "oneiric.swaps") == {ok: 2.0, failed: 1.0}
    # histograms leave the key out (bounded cardinality with thousands of keys)
    ok_h = (("domain", "adapter"), ("outcome", "complete"), ("provider", "redis"))
    failed_h = (("domain", "service"), ("outcome", "failed"), ("provider", "kafka"))
    assert points(m, "oneiric.swap.duration_ms") == {ok_h: 40.0, failed_h: 5.5}
    assert points(m, "oneiric.swap.duration_ms.count") == {ok_h: 2.0, failed_h: 1.0}
    # cumulative: reading again does not reset, a new record adds; another key with the same
    # provider adds to the same histogram series but gets its own counter series
    tel.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_ms=1.0)
    tel.record_swap(domain="adapter", key="session", provider="redis", outcome="complete", duration_ms=2.0)
    m = tel.metrics()
    assert points(m, "oneiric.swaps")[ok] == 3.0
    assert points(m, "oneiric.swaps")[(("domain", "adapter"), ("key", "session"), ("outcome", "complete"),
                                        ("provider", "redis"))] == 1.0
    assert points(m, "oneiric.swap.duration_ms")[ok_h] == 43.0
    assert len(points(m, "oneiric.swap.duration_ms")) == 2


def test_health_metrics(tel: Telemetry) -> None:
    tel.record_health(domain="adapter", key="db", provider="pg", status="ok", latency_ms=2.0)
    tel.record_health(domain="adapter", key="db", provider="pg", status="ok", latency_ms=4.0)
    tel.record_health(domain="adapter", key="db", provider="pg", status="failed", latency_ms=None)
    m = tel.metrics()
    ok = (("domain", "adapter"), ("key", "db"), ("provider", "pg"), ("status", "ok"))
    failed = (("domain", "adapter"), ("key", "db"), ("provider", "pg"), ("status", "failed"))
    assert points(m, "oneiric.health.checks") == {ok: 2.0, failed: 1.0}
    # a check with no latency counts but records no latency sample; the histogram has no key
    ok_h = (("domain", "adapter"), ("provider", "pg"), ("status", "ok"))
    assert points(m, "oneiric.health.latency_ms") == {ok_h: 6.0}
    assert points(m, "oneiric.health.latency_ms.count") == {ok_h: 2.0}


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
    assert points(m, "oneiric.resolutions") == {(("domain", "adapter"),): 1000.0, (("domain", "service"),): 7.0}
    counts["adapter"] += 5
    assert points(tel.metrics(), "oneiric.resolutions")[(("domain", "adapter"),)] == 1005.0
    # a later call replaces the source (no duplicate instrument)
    tel.observe_resolutions(lambda: {"task": 3})
    assert (("domain", "task"),) in points(tel.metrics(), "oneiric.resolutions")


def test_broken_resolution_source_does_not_break_metrics(tel: Telemetry) -> None:
    tel.observe_resolutions(lambda: 1 / 0)
    tel.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_ms=1.0)
    m = tel.metrics()
    assert "oneiric.swaps" in m
    assert m.get("oneiric.resolutions", []) == []


def test_spans_with_attributes_and_error_status(tel: Telemetry) -> None:
    with tel.span("swap", domain=Domain.ADAPTER, key="cache", attempt=2, ratio=0.5, forced=False, note=None) as s:
        assert s.is_recording()
        with tel.span("activate", provider="redis"):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with tel.span("health", key="db"):
            raise RuntimeError("boom")
    spans = tel.recent_spans()
    assert [s["name"] for s in spans] == ["activate", "swap", "health"]
    activate, swap, health = spans
    assert swap["attributes"] == {"domain": "adapter", "key": "cache", "attempt": 2, "ratio": 0.5, "forced": False}
    assert swap["status"] == "unset" and swap["parent_id"] is None
    assert activate["parent_id"] == swap["span_id"] and activate["trace_id"] == swap["trace_id"]
    assert swap["end_ns"] >= swap["start_ns"] > 0 and swap["duration_ms"] >= 0
    assert health["status"] == "error" and "boom" in health["status_message"]
    assert health["attributes"] == {"key": "db"}
    assert [s["name"] for s in tel.recent_spans(limit=1)] == ["health"]
    assert tel.recent_spans(limit=0) == []


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
        a.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_ms=1.0)
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


def otlp_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    except ImportError:  # the parent package `opentelemetry.exporter` is absent too
        return False


def test_otlp_without_the_package_warns_and_keeps_working() -> None:
    t = Telemetry("otlp", endpoint="http://127.0.0.1:9/")
    try:
        if otlp_installed():
            assert t.warning is None  # pragma: no cover - depends on the environment
        else:
            assert t.warning == OTLP_MISSING
        t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_ms=2.0)
        with t.span("still-works"):
            pass
        assert points(t.metrics(), "oneiric.swaps")
        assert [s["name"] for s in t.recent_spans()] == ["still-works"]
    finally:
        t.shutdown()


def test_unknown_exporter_warns_and_stays_in_memory() -> None:
    t = Telemetry("prometheus")
    try:
        assert t.exporter == "none" and "unknown telemetry exporter 'prometheus'" in t.warning
        t.record_health(domain="adapter", key="k", provider="p", status="ok", latency_ms=1.0)
        assert "oneiric.health.checks" in t.metrics()
    finally:
        t.shutdown()


def test_none_exporter_has_no_warning(tel: Telemetry) -> None:
    assert tel.warning is None and tel.exporter == "none"


def test_console_exporter_prints_on_shutdown(capsys: pytest.CaptureFixture[str]) -> None:
    t = Telemetry("console", service_name="oneiric-test")
    t.record_swap(domain="adapter", key="cache", provider="redis", outcome="complete", duration_ms=3.0)
    with t.span("console-span", key="cache"):
        pass
    t.shutdown()
    out = capsys.readouterr().out
    assert "oneiric.swaps" in out and "oneiric.swap.duration_ms" in out
    assert "console-span" in out
    assert "oneiric-test" in out  # the resource's service.name


def test_shutdown_twice_and_use_after_shutdown() -> None:
    t = Telemetry()
    t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_ms=1.0)
    with t.span("before"):
        pass
    t.shutdown()
    t.shutdown()
    # recording after shutdown is a harmless no-op; the last snapshot stays readable
    t.record_swap(domain="adapter", key="k", provider="p", outcome="complete", duration_ms=1.0)
    t.record_health(domain="adapter", key="k", provider="p", status="ok", latency_ms=1.0)
    with t.span("after"):
        pass
    assert list(points(t.metrics(), "oneiric.swaps").values()) == [1.0]
    assert [s["name"] for s in t.recent_spans()] == ["before"]
