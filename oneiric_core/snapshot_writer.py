"""The snapshot writer: the host's lifecycle and health snapshots, kept in the store for others.

Why a service of its own: every other process (a CLI command, a client console, a fleet view)
shows what serves and how it is doing from rows the host writes. Writing a key's lifecycle
row when its slot changes, and batching health samples (one per key per round) into one
transaction a moment later, so 2,500 probes cost one write instead of 2,500, is one job with
its own state (the samples waiting, the timer). The Engine composes it (`Engine.snapshots`)
and keeps `flush_snapshots()` as a delegate. What it uses of the engine is
`ports.SnapshotEngine`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .domains import ComponentRef
from .store import HealthSnapshot, LifecycleSnapshot

if TYPE_CHECKING:
    from .health import HealthTrack
    from .lifecycle import Slot
    from .ports import SnapshotEngine

HEALTH_WRITE_DELAY_S = 0.05  # how long health samples gather before they are written together


class SnapshotWriter:
    """Writes the host's slots and health tracks to the store; does nothing in other processes."""

    def __init__(self, engine: SnapshotEngine) -> None:
        self._engine = engine
        self._dirty: dict[ComponentRef, HealthSnapshot] = {}  # health snapshots waiting to be written
        self._flush: asyncio.TimerHandle | None = None

    def slot_changed(self, slot: Slot) -> None:
        """Write `slot`'s lifecycle row now (what serves it, its state, its last swap)."""
        engine = self._engine
        if not engine.is_host:
            return
        cand = slot.current.candidate if slot.current else None
        engine.store_write(engine.store.put_lifecycle, LifecycleSnapshot(
            slot.ref.domain.value, slot.ref.key, slot.state.value,
            cand.provider if cand else None, cand.source if cand else None,
            slot.pending.provider if slot.pending else None, slot.last_error, slot.inflight,
            slot.last_swap.to_dict() if slot.last_swap else None, time.time(),
        ))

    def health_changed(self, track: HealthTrack) -> None:
        """Queue `track`'s health row; the queue is written HEALTH_WRITE_DELAY_S later, at once."""
        if not self._engine.is_host:
            return
        self._dirty[track.ref] = HealthSnapshot(
            track.ref.domain.value, track.ref.key, track.provider, track.status.value,
            track.latency_ms, track.message, track.checked_at or time.time(), track.changed_at,
            track.samples.latencies(),
        )
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(HEALTH_WRITE_DELAY_S, self.flush)

    def flush(self) -> None:
        """Write the health snapshots waiting to be written (also done on stop)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        dirty, self._dirty = self._dirty, {}
        if dirty:
            engine = self._engine
            with engine.store_batch():
                for snapshot in dirty.values():
                    engine.store_write(engine.store.put_health, snapshot)
