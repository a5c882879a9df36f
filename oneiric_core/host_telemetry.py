"""Host telemetry: the host's spans, metrics and journal log records, and how they are doing.

Why a service of its own: setting up the exporters from app.yml and the OTEL_* variables,
pointing the gauges at the engine's parts, journaling an exporter that is missing, failing or
working again, and recording that status for other processes (which read it back here) is one
job with its own state (the Telemetry, the bus listener, the last problem seen). The Engine
composes it (`Engine.host_telemetry`) and keeps `telemetry` and `telemetry_status()` as thin
delegates. What it needs of the engine is named by `ports.TelemetryEngine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .events import Event, Severity
from .store import StoreError

if TYPE_CHECKING:
    from .ports import TelemetryEngine


class HostTelemetry:
    """The host's Telemetry (telemetry.py) from start() to stop(), and its status anywhere."""

    def __init__(self, engine: TelemetryEngine) -> None:
        self._engine = engine
        self.telemetry: Any | None = None  # the host's, from start() on
        self._listener: Callable[[], None] = lambda: None  # stops its journal listener
        self._problem: str | None = None  # the problem last journaled, until it ends

    def start(self) -> None:
        """Host only: spans, metrics and journal events as log records (telemetry.py), with
        app.yml's telemetry section and the OTEL_* variables (telemetry_config.py). A
        configured exporter that is missing is journaled now; one that starts failing (or
        works again) later is journaled when it changes, and recorded for other processes."""
        from .telemetry import Telemetry  # imported here: the CLI's read commands never pay for it
        from .telemetry_config import TelemetryConfig

        engine = self._engine
        loop = asyncio.get_running_loop()

        def from_exporter() -> None:  # from an exporter's thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to tell
                loop.call_soon_threadsafe(self.changed)

        tel = self.telemetry = Telemetry(TelemetryConfig.resolve(engine.settings.app.telemetry),
                                         on_change=from_exporter)
        tel.observe_resolutions(lambda: {str(d): n for d, n in engine.resolver.resolutions.items()})
        tel.observe_journal_head(lambda: getattr(engine.store.last_published_head, "id", None))
        tel.observe_store(engine.store.path)
        tel.observe_lifecycle(self._lifecycle_counts)
        tel.observe_activity(self._activity_counts)
        tel.observe_breakers(lambda: {name: src.breaker.state for name, src in list(engine.remote.sources.items())})
        self.count_journal()
        engine.lifecycle.use_telemetry(tel)
        engine.health.use_telemetry(tel)
        self._listener = engine.bus.add_listener(tel.on_event)
        self._problem = None
        for note in tel.config.notes:
            engine.emit(Event("telemetry-config-warning", f"telemetry: {note}", Severity.WARNING, actor=engine.actor))
        self.changed()

    def _lifecycle_counts(self) -> dict[tuple[str, str], int]:
        engine = self._engine
        counts: dict[tuple[str, str], int] = {}
        for slot in engine.lifecycle.slots():
            key = (slot.ref.domain.value, slot.state.value)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _activity_counts(self) -> dict[tuple[str, str], int]:
        engine = self._engine
        counts: dict[tuple[str, str], int] = {}
        for record in engine.activity.all():
            key = (record.domain, record.state)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def count_journal(self) -> None:
        """Set the journal-rows gauge (at start and after each prune)."""
        engine = self._engine
        if self.telemetry is not None:
            try:
                self.telemetry.set_journal_rows(engine.store.count_journal())
            except StoreError as exc:
                engine.store_error = str(exc)

    def changed(self) -> None:
        """On the loop: record the telemetry status for other processes, and journal a
        problem when it begins (a missing exporter, exports failing) and when it ends."""
        engine = self._engine
        tel = self.telemetry
        if tel is None or not engine.is_host:
            return
        status = tel.status()
        before, self._problem = self._problem, status.problem
        if status.problem and not before:
            kind = "telemetry-unavailable" if status.state == "unavailable" else "telemetry-export-failed"
            engine.emit(Event(kind, f"telemetry: {status.problem}", Severity.WARNING, actor=engine.actor,
                              data=status.to_dict()))
        elif before and not status.problem:
            engine.emit(Event("telemetry-export-recovered", f"telemetry: exporting to {status.destination} works "
                              "again", actor=engine.actor, data=status.to_dict()))
        self._publish(status)

    def _publish(self, status: Any) -> None:
        """Record the status in the store: `oneiric status` runs in another process."""
        from .telemetry_config import META_KEY

        engine = self._engine
        record = {**status.to_dict(), "pid": os.getpid(), "hostname": socket.gethostname(), "updated_at": time.time()}
        engine.store_write(lambda value: engine.store.set_meta(engine.store.node_key(META_KEY), value), record)

    def status(self) -> Any:
        """How telemetry is doing (telemetry_config.TelemetryStatus): from this process's
        telemetry in the host; else as the live host recorded it; else, with no host, what
        app.yml and this process's environment would do."""
        from .telemetry_config import META_KEY, TelemetryConfig, TelemetryStatus

        engine = self._engine
        if engine.is_host and self.telemetry is not None:
            return self.telemetry.status()
        lease, alive = engine.host()
        if lease is not None and alive:
            try:
                raw = engine.store.get_meta(engine.store.node_key(META_KEY))
            except StoreError as exc:
                return TelemetryStatus("none", None, "unknown", f"cannot read the state store: {exc}")
            if isinstance(raw, dict) and raw.get("pid") == lease.pid and raw.get("hostname") == lease.hostname:
                return TelemetryStatus.from_dict(raw)
            return TelemetryStatus("none", None, "unknown",
                                   f"the host (pid {lease.pid} on {lease.hostname}) recorded no telemetry status")
        return TelemetryConfig.resolve(engine.settings.app.telemetry).offline_status()

    def stop(self) -> None:
        """Stop listening to the journal and flush and shut the exporters down."""
        if self.telemetry is not None:
            self._listener()
            self.telemetry.shutdown()
