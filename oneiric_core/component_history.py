"""A component's history as the console's history view plots it: health latency over time,
with the swaps, rollbacks and health changes of that key marked where they happened.

Built from two records every process can read: the health samples (the host's own track, or
the snapshot the host stores for its clients) and the journal. The same function serves the
host and a client console, so both show the same picture.

The store keeps a snapshot's samples as latencies only, oldest first, ending at `checked_at`
(store/snapshots.py); a client gives them times spaced by the health interval
(`track_from_snapshot`, `exact_times=False`), and the view says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .domains import ComponentRef, HealthStatus
from .events import Event
from .health import HealthSample, HealthTrack, SampleHistory
from .store.records import HealthSnapshot

# Journal kinds marked on the plot, and the word each is marked with.
MARKER_KINDS = {"swap-complete": "swap", "swap-rollback": "rollback", "swap-failed": "rollback",
                "health-changed": "health"}


@dataclass(frozen=True, slots=True)
class Marker:
    """One journal event on the time axis: `kind` is "swap", "rollback" or "health"."""

    ts: float
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class ComponentHistory:
    ref: ComponentRef
    provider: str | None
    status: str
    samples: tuple[HealthSample, ...]
    markers: tuple[Marker, ...]
    exact_times: bool  # False: sample times spaced by the health interval (a client's view)

    def points(self) -> tuple[list[float], list[float]]:
        """The samples with a latency, as (times, latencies in ms)."""
        kept = [s for s in self.samples if s.latency_ms is not None]
        return [s.ts for s in kept], [s.latency_ms for s in kept if s.latency_ms is not None]

    def counts(self) -> dict[str, int]:
        """How many markers of each kind ("swap", "rollback", "health")."""
        out = {kind: 0 for kind in ("swap", "rollback", "health")}
        for marker in self.markers:
            out[marker.kind] += 1
        return out


def marker_of(event: Event) -> Marker | None:
    """The marker for one event, None for kinds not marked (and refused swaps, which changed
    nothing)."""
    kind = MARKER_KINDS.get(event.kind)
    if kind is None or event.outcome == "refused":
        return None
    data = event.data if isinstance(event.data, dict) else {}
    if kind == "swap":
        to = data.get("to") or event.provider
        label = f"swap {data['from']} -> {to}" if data.get("from") else f"activate {to}"
    elif kind == "rollback":
        label = f"rollback {event.provider or ''}".rstrip()
    else:
        label = f"health {data.get('from', '?')} -> {data.get('to', event.outcome or '?')}"
    return Marker(event.ts, kind, label)


def build(ref: ComponentRef, track: HealthTrack | None, events: Iterable[Event], *,
          exact_times: bool = True) -> ComponentHistory:
    """`ref`'s history from its health track and its journal events (oldest first)."""
    markers = tuple(m for e in events if (m := marker_of(e)) is not None)
    samples = tuple(track.samples) if track is not None else ()
    return ComponentHistory(
        ref, track.provider if track else None, track.status.value if track else HealthStatus.UNKNOWN.value,
        samples, markers, exact_times,
    )


def track_from_snapshot(ref: ComponentRef, snap: HealthSnapshot, interval_s: float) -> HealthTrack:
    """A host's stored health snapshot as a HealthTrack: what a client console shows in TREND
    and CHANGED and plots in the history view. The samples get times `interval_s` apart ending
    at the snapshot's `checked_at` (the store keeps their latencies only)."""
    try:
        status = HealthStatus(snap.status)
    except ValueError:
        status = HealthStatus.UNKNOWN
    values = [v if isinstance(v, int | float) else None for v in snap.samples]
    history = SampleHistory(max(len(values), 2))
    last = len(values) - 1
    for index, latency in enumerate(values):
        history.append(HealthSample(snap.checked_at - (last - index) * interval_s, status,
                                    None if latency is None else float(latency)))
    return HealthTrack(ref, snap.provider or "", status, snap.latency_ms, snap.message, snap.checked_at,
                       snap.changed_at, history)
