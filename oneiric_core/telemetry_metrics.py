"""The engine's metrics: their names, units and attributes, and the upstream names they map to.

Names follow OpenTelemetry's semantic conventions: a namespace (`oneiric.`), durations as
histograms in seconds (`*.duration`, unit `s`), counters of things pluralized with an
annotation unit (`oneiric.swaps`, `{swap}`), current amounts as non-pluralized gauges
(`*.count`), no `_total`, no unit in the name, attributes namespaced (`oneiric.domain`). A
collector's Prometheus exporter turns them into `oneiric_swaps_total`,
`oneiric_swap_duration_seconds` and so on.

Upstream Oneiric's runbooks and dashboards query other names (`oneiric_lifecycle_swap_total`,
`oneiric_lifecycle_swap_duration_ms`, ...; its reference lists them). With app.yml
`telemetry.upstream_names: true` each metric below that has an upstream counterpart is also
exported under that name, with upstream's attribute names and values and upstream's scale
(milliseconds for `_ms`), and with no unit, so that a Prometheus exporter adds no unit
suffix and the name stays exactly what those queries ask for. `METRICS` and `UPSTREAM` are
the table docs/telemetry.md shows (tests/test_telemetry.py checks they agree).

Histograms leave the key out: a histogram keeps a bucket array per attribute set, so one per
key cost megabytes with thousands of keys (and as much again in any collector); counters keep
it, so per-key rates stay available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DOMAIN, KEY, PROVIDER = "oneiric.domain", "oneiric.key", "oneiric.provider"
SOURCE = "oneiric.remote.source"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    instrument: str  # counter | histogram | gauge | observable counter
    unit: str
    attributes: tuple[str, ...]
    description: str
    upstream: tuple[str, ...] = ()  # the upstream Oneiric names it is also exported as


@dataclass(frozen=True)
class UpstreamSpec:
    name: str
    instrument: str
    attributes: tuple[str, ...]
    source: str  # our metric it is derived from
    note: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("oneiric.swaps", "counter", "{swap}",
               (DOMAIN, KEY, PROVIDER, "oneiric.swap.operation", "oneiric.swap.outcome"),
               "Swaps and activations by outcome (complete, rolled-back, failed, refused)",
               ("oneiric_lifecycle_swap_total",)),
    MetricSpec("oneiric.swap.duration", "histogram", "s",
               (DOMAIN, PROVIDER, "oneiric.swap.operation", "oneiric.swap.outcome"),
               "How long a swap or activation took, build to cleanup", ("oneiric_lifecycle_swap_duration_ms",)),
    MetricSpec("oneiric.swap.rollbacks", "counter", "{rollback}", (DOMAIN, KEY, PROVIDER),
               "Swaps rolled back (the new provider failed; the old one kept serving)"),
    MetricSpec("oneiric.health.checks", "counter", "{check}", (DOMAIN, KEY, PROVIDER, "oneiric.health.status"),
               "Health checks of serving providers (probes and swap gates) by status",
               ("oneiric_lifecycle_health_check_failures_total",)),
    MetricSpec("oneiric.health.check.duration", "histogram", "s", (DOMAIN, PROVIDER, "oneiric.health.status"),
               "How long a health check took"),
    MetricSpec("oneiric.resolutions", "observable counter", "{resolution}", (DOMAIN,),
               "Component resolutions (resolve and use)", ("oneiric_resolution_total",)),
    MetricSpec("oneiric.lifecycle.component.count", "gauge", "{component}", (DOMAIN, "oneiric.lifecycle.state"),
               "Keys by lifecycle state (ready, activating, failed, ...)", ("oneiric_lifecycle_active_instances",)),
    MetricSpec("oneiric.activity.component.count", "gauge", "{component}", (DOMAIN, "oneiric.activity.state"),
               "Keys paused, draining or drained",
               ("oneiric_activity_paused_components", "oneiric_activity_draining_components")),
    MetricSpec("oneiric.activity.changes", "counter", "{change}", (DOMAIN, "oneiric.activity.state"),
               "Pause, drain and resume changes, by the state entered",
               ("oneiric_activity_pause_events_total", "oneiric_activity_drain_events_total")),
    MetricSpec("oneiric.remote.syncs", "counter", "{sync}", (SOURCE, "oneiric.remote.sync.outcome", "error.type"),
               "Remote manifest syncs by outcome (changed, unchanged, failed, skipped)",
               ("oneiric_remote_sync_total", "oneiric_remote_sync_success_total", "oneiric_remote_sync_failure_total")),
    MetricSpec("oneiric.remote.sync.duration", "histogram", "s", (SOURCE, "oneiric.remote.sync.outcome"),
               "How long a remote sync took", ("oneiric_remote_sync_duration_ms",)),
    MetricSpec("oneiric.remote.breaker.state", "gauge", "1", (SOURCE, "oneiric.remote.breaker.state"),
               "1 for the state each source's circuit breaker is in (closed, open, half-open), 0 for the others"),
    MetricSpec("oneiric.remote.breaker.opens", "counter", "{open}", (SOURCE,),
               "Times a source's circuit breaker opened", ("oneiric_circuit_open_total",)),
    MetricSpec("oneiric.journal.event.count", "gauge", "{event}", (),
               "Events in the journal (after retention pruning)"),
    MetricSpec("oneiric.journal.head_id", "gauge", "1", (),
               "Id of the journal's published hash-chain head"),
    MetricSpec("oneiric.store.size", "gauge", "By", (),
               "Size of the state store on disk (state.sqlite and its write-ahead log)"),
)

UPSTREAM: tuple[UpstreamSpec, ...] = (
    UpstreamSpec("oneiric_lifecycle_swap_total", "counter", ("domain", "key", "provider", "outcome"), "oneiric.swaps",
                 "outcome success (complete), failed (failed), rollback (rolled-back); refused swaps are not counted"),
    UpstreamSpec("oneiric_lifecycle_swap_duration_ms", "histogram", ("domain", "provider", "outcome"),
                 "oneiric.swap.duration", "milliseconds; outcome success or failed (a rollback is failed); no key "
                 "(upstream has one)"),
    UpstreamSpec("oneiric_lifecycle_health_check_failures_total", "counter", ("domain", "key", "provider"),
                 "oneiric.health.checks", "only checks with status failed"),
    UpstreamSpec("oneiric_lifecycle_active_instances", "gauge", ("domain",), "oneiric.lifecycle.component.count",
                 "keys in state ready"),
    UpstreamSpec("oneiric_resolution_total", "observable counter", ("domain",), "oneiric.resolutions",
                 "per domain only (upstream documents key, provider and outcome too)"),
    UpstreamSpec("oneiric_activity_paused_components", "gauge", ("domain",), "oneiric.activity.component.count",
                 "state paused"),
    UpstreamSpec("oneiric_activity_draining_components", "gauge", ("domain",), "oneiric.activity.component.count",
                 "state draining"),
    UpstreamSpec("oneiric_activity_pause_events_total", "counter", ("domain", "state"), "oneiric.activity.changes",
                 "state paused, or resumed (active after paused)"),
    UpstreamSpec("oneiric_activity_drain_events_total", "counter", ("domain", "state"), "oneiric.activity.changes",
                 "state draining, or cleared (active after draining or drained)"),
    UpstreamSpec("oneiric_remote_sync_total", "counter", ("source", "outcome"), "oneiric.remote.syncs",
                 "outcome success or failure; skipped syncs (circuit open) are not counted"),
    UpstreamSpec("oneiric_remote_sync_success_total", "counter", ("source", "url"), "oneiric.remote.syncs",
                 "changed or unchanged syncs"),
    UpstreamSpec("oneiric_remote_sync_failure_total", "counter", ("url", "error"), "oneiric.remote.syncs",
                 "failed syncs; error is the failure's kind (signature, digest, http-status, ...)"),
    UpstreamSpec("oneiric_remote_sync_duration_ms", "histogram", ("source", "url"), "oneiric.remote.sync.duration",
                 "milliseconds"),
    UpstreamSpec("oneiric_circuit_open_total", "counter", ("circuit",), "oneiric.remote.breaker.opens",
                 "circuit is the source's name"),
)

SPEC = {m.name: m for m in METRICS}
_UPSTREAM_SWAP = {"complete": "success", "failed": "failed", "rolled-back": "rollback"}


def _guarded(source: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]) -> Callable[[Any], list[Any]]:
    """An observable callback from `source()` ([(value, attributes)]); a source that raises
    yields nothing rather than breaking the collection of every other metric."""
    from opentelemetry.metrics import Observation

    def callback(options: Any) -> list[Any]:
        try:
            return [Observation(value, dict(attrs)) for value, attrs in source()]
        except Exception:  # noqa: BLE001 - a broken source must not break the other metrics
            return []

    return callback


class Instruments:
    """The synchronous instruments (and, with `upstream`, their upstream-named copies)."""

    def __init__(self, meter: Any, *, upstream: bool) -> None:
        self.meter = meter
        self.upstream = upstream

        def make(name: str) -> Any:
            spec = SPEC[name]
            create = meter.create_histogram if spec.instrument == "histogram" else meter.create_counter
            return create(name, unit=spec.unit, description=spec.description)

        self.swaps = make("oneiric.swaps")
        self.swap_duration = make("oneiric.swap.duration")
        self.rollbacks = make("oneiric.swap.rollbacks")
        self.health_checks = make("oneiric.health.checks")
        self.health_duration = make("oneiric.health.check.duration")
        self.activity_changes = make("oneiric.activity.changes")
        self.syncs = make("oneiric.remote.syncs")
        self.sync_duration = make("oneiric.remote.sync.duration")
        self.breaker_opens = make("oneiric.remote.breaker.opens")
        self._up: dict[str, Any] = {}
        if upstream:
            for spec in UPSTREAM:
                if spec.instrument in ("counter", "histogram"):
                    create = meter.create_histogram if spec.instrument == "histogram" else meter.create_counter
                    self._up[spec.name] = create(spec.name, unit="", description=f"upstream name of {spec.source}")

    # -- recording (each one call from the engine) ----------------------------------------------
    def swap(self, domain: str, key: str, provider: str, operation: str, outcome: str, seconds: float) -> None:
        attrs = {DOMAIN: domain, KEY: key, PROVIDER: provider, "oneiric.swap.operation": operation,
                 "oneiric.swap.outcome": outcome}
        self.swaps.add(1, attrs)
        if outcome == "refused":  # nothing was built: no duration to speak of
            return
        self.swap_duration.record(seconds, {DOMAIN: domain, PROVIDER: provider, "oneiric.swap.operation": operation,
                                            "oneiric.swap.outcome": outcome})
        if outcome == "rolled-back":
            self.rollbacks.add(1, {DOMAIN: domain, KEY: key, PROVIDER: provider})
        if self._up and outcome in _UPSTREAM_SWAP:
            self._up["oneiric_lifecycle_swap_total"].add(
                1, {"domain": domain, "key": key, "provider": provider, "outcome": _UPSTREAM_SWAP[outcome]})
            self._up["oneiric_lifecycle_swap_duration_ms"].record(
                seconds * 1000.0, {"domain": domain, "provider": provider,
                                   "outcome": "success" if outcome == "complete" else "failed"})

    def health(self, domain: str, key: str, provider: str, status: str, seconds: float | None) -> None:
        self.health_checks.add(1, {DOMAIN: domain, KEY: key, PROVIDER: provider, "oneiric.health.status": status})
        if seconds is not None:
            self.health_duration.record(seconds, {DOMAIN: domain, PROVIDER: provider, "oneiric.health.status": status})
        if self._up and status == "failed":
            self._up["oneiric_lifecycle_health_check_failures_total"].add(
                1, {"domain": domain, "key": key, "provider": provider})

    def sync(self, source: str, uri: str, outcome: str, error_kind: str | None, seconds: float) -> None:
        attrs: dict[str, Any] = {SOURCE: source, "oneiric.remote.sync.outcome": outcome}
        if error_kind:
            attrs["error.type"] = error_kind
        self.syncs.add(1, attrs)
        if outcome == "skipped":
            return
        self.sync_duration.record(seconds, {SOURCE: source, "oneiric.remote.sync.outcome": outcome})
        if self._up:
            ok = outcome != "failed"
            self._up["oneiric_remote_sync_total"].add(1, {"source": source, "outcome": "success" if ok else "failure"})
            if ok:
                self._up["oneiric_remote_sync_success_total"].add(1, {"source": source, "url": uri})
            else:
                self._up["oneiric_remote_sync_failure_total"].add(1, {"url": uri, "error": (error_kind or "")[:128]})
            self._up["oneiric_remote_sync_duration_ms"].record(seconds * 1000.0, {"source": source, "url": uri})

    def activity_change(self, domain: str | None, previous: str | None, state: str) -> None:
        self.activity_changes.add(1, {DOMAIN: domain or "", "oneiric.activity.state": state})
        if not self._up:
            return
        if state == "paused" or (state == "active" and previous == "paused"):
            self._up["oneiric_activity_pause_events_total"].add(
                1, {"domain": domain or "", "state": "paused" if state == "paused" else "resumed"})
        elif state == "draining" or (state == "active" and previous in ("draining", "drained")):
            self._up["oneiric_activity_drain_events_total"].add(
                1, {"domain": domain or "", "state": "draining" if state == "draining" else "cleared"})

    def breaker_open(self, source: str) -> None:
        self.breaker_opens.add(1, {SOURCE: source})
        if self._up:
            self._up["oneiric_circuit_open_total"].add(1, {"circuit": source})

    # -- observed at collection --------------------------------------------------------------------
    def observe(self, name: str, source: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]) -> None:
        """Publish metric `name` from `source()`, called only when metrics are collected."""
        spec = SPEC[name]
        create = (self.meter.create_observable_counter if spec.instrument == "observable counter"
                  else self.meter.create_observable_gauge)
        create(name, callbacks=[_guarded(source)], unit=spec.unit, description=spec.description)

    def observe_upstream(self, name: str, source: Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]) -> None:
        """An upstream-named copy of an observed metric (only with `upstream`)."""
        if not self.upstream:
            return
        spec = next(u for u in UPSTREAM if u.name == name)
        create = (self.meter.create_observable_counter if spec.instrument == "observable counter"
                  else self.meter.create_observable_gauge)
        create(name, callbacks=[_guarded(source)], unit="", description=f"upstream name of {spec.source}")


__all__ = ["METRICS", "UPSTREAM", "Instruments", "MetricSpec", "UpstreamSpec"]
