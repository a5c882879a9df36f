"""HealthMonitor: periodic probes of every serving provider, with recent history.

Each (domain, key) keeps its current status, latency and message, when it last changed,
and the last `history` samples for sparklines. Only transitions are journaled
(`health-changed`), so a steady system writes nothing; the first healthy sample of a new
provider is not news, a first unhealthy one is.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .domains import ComponentRef, HealthResult, HealthStatus
from .events import Event, Severity

SEVERITY = {
    HealthStatus.OK: Severity.INFO,
    HealthStatus.DEGRADED: Severity.WARNING,
    HealthStatus.FAILED: Severity.ERROR,
    HealthStatus.UNKNOWN: Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class HealthSample:
    ts: float
    status: HealthStatus
    latency_ms: float | None


# Probes started per turn of the event loop in a round. A built-in provider's health check
# runs to the end without awaiting anything; 2,500 of them started at once held the loop
# (and the console on it) for over 600 ms. In groups, the loop runs between groups.
PROBES_PER_TURN = 32
ROUND_EVENTS = 20  # keys named (as span events) per health.round span

_STATUSES = tuple(HealthStatus)
_STATUS_INDEX = {status: index for index, status in enumerate(_STATUSES)}


class SampleHistory:
    """The last `maxlen` health samples of one key, oldest first, like a bounded deque of
    HealthSample (append, len, iteration, indexing) but stored as three compact arrays.

    A deque of sample objects cost about 16 KB per key once full (each sample an object
    with two float objects); with 2,500 keys and 60 samples each that was 40 MB of a
    console's memory. Here a full history is about 1 KB. Iterating builds the HealthSample
    objects on the fly; `latencies()` gives the sparkline data without building them.
    """

    __slots__ = ("maxlen", "_ts", "_latency", "_status", "_start")

    def __init__(self, maxlen: int = 60) -> None:
        self.maxlen = maxlen
        self._ts = array("d")
        self._latency = array("d")  # NaN stands for "no latency" (None)
        self._status = array("B")
        self._start = 0  # index of the oldest sample once the arrays are full (a ring)

    def append(self, sample: HealthSample) -> None:
        latency = math.nan if sample.latency_ms is None else sample.latency_ms
        status = _STATUS_INDEX[sample.status]
        if len(self._ts) < self.maxlen:
            self._ts.append(sample.ts)
            self._latency.append(latency)
            self._status.append(status)
            return
        if self.maxlen <= 0:
            return
        i = self._start
        self._ts[i] = sample.ts
        self._latency[i] = latency
        self._status[i] = status
        self._start = (i + 1) % self.maxlen

    def __len__(self) -> int:
        return len(self._ts)

    def _order(self) -> range | list[int]:
        n = len(self._ts)
        if not self._start:
            return range(n)
        return [*range(self._start, n), *range(self._start)]

    def __getitem__(self, index: int) -> HealthSample:
        n = len(self._ts)
        if not -n <= index < n:
            raise IndexError("sample index out of range")
        i = (self._start + index % n) % n
        return self._sample(i)

    def _sample(self, i: int) -> HealthSample:
        latency = self._latency[i]
        return HealthSample(self._ts[i], _STATUSES[self._status[i]], None if latency != latency else latency)

    def __iter__(self) -> Iterator[HealthSample]:
        return (self._sample(i) for i in self._order())

    def latencies(self) -> list[float | None]:
        """Every sample's latency_ms, oldest first."""
        values = self._latency[self._start:] + self._latency[:self._start]
        return [None if v != v else v for v in values]

    def __repr__(self) -> str:
        return f"SampleHistory({list(self)!r}, maxlen={self.maxlen})"


@dataclass(slots=True)
class HealthTrack:
    ref: ComponentRef
    provider: str
    status: HealthStatus = HealthStatus.UNKNOWN
    latency_ms: float | None = None
    message: str = ""
    checked_at: float | None = None
    changed_at: float = field(default_factory=time.time)
    samples: SampleHistory = field(default_factory=SampleHistory)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.ref.domain.value,
            "key": self.ref.key,
            "provider": self.provider,
            "status": self.status.value,
            "latency_ms": self.latency_ms,
            "message": self.message,
            "checked_at": self.checked_at,
            "changed_at": self.changed_at,
            "samples": self.samples.latencies(),
        }


class HealthMonitor:
    def __init__(
        self,
        probe: Callable[[ComponentRef], Any],
        refs: Callable[[], list[ComponentRef]],
        *,
        interval_s: float,
        history: int,
        emit: Callable[[Event], object],
        on_update: Callable[[HealthTrack], None] | None = None,
        telemetry: Any | None = None,
    ) -> None:
        self._probe = probe
        self._refs = refs
        self.interval_s = interval_s
        self._history = history
        self._emit = emit
        self._on_update = on_update or (lambda track: None)
        self._telemetry = telemetry
        self._tracks: dict[ComponentRef, HealthTrack] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def use_telemetry(self, telemetry: Any | None) -> None:
        """Record each probe as a metric on `telemetry` (the host's, from its start); None
        records nothing. The monitor is built before the host knows its telemetry."""
        self._telemetry = telemetry

    # -- reads -----------------------------------------------------------------------------
    def track(self, ref: ComponentRef) -> HealthTrack | None:
        return self._tracks.get(ref)

    def tracks(self) -> list[HealthTrack]:
        return list(self._tracks.values())

    # -- recording -------------------------------------------------------------------------
    def record(self, ref: ComponentRef, provider: str, result: HealthResult) -> HealthTrack:
        now = time.time()
        track = self._tracks.get(ref)
        if track is None or track.provider != provider:
            track = HealthTrack(ref, provider, changed_at=now, samples=SampleHistory(self._history))
            self._tracks[ref] = track
        previous = track.status
        track.samples.append(HealthSample(now, result.status, result.latency_ms))
        track.latency_ms = result.latency_ms
        track.message = result.message
        track.checked_at = now
        if result.status != previous:
            track.status = result.status
            track.changed_at = now
            if not (previous == HealthStatus.UNKNOWN and result.status == HealthStatus.OK):
                latency = f" ({result.latency_ms:.1f} ms)" if result.latency_ms is not None else ""
                detail = f": {result.message}" if result.message else ""
                self._emit(Event(
                    "health-changed",
                    f"{ref} ({provider}) {previous.value} -> {result.status.value}{latency}{detail}",
                    SEVERITY[result.status], ref.domain, ref.key, provider,
                    outcome=result.status.value, duration_ms=result.latency_ms,
                    data={"from": previous.value, "to": result.status.value, "message": result.message},
                ))
        if self._telemetry is not None:
            self._telemetry.record_health(
                domain=ref.domain.value, key=ref.key, provider=provider,
                status=result.status.value, latency_ms=result.latency_ms,
            )
        self._on_update(track)
        return track

    def forget(self, ref: ComponentRef) -> None:
        self._tracks.pop(ref, None)

    # -- probing ---------------------------------------------------------------------------
    async def probe(self, ref: ComponentRef) -> HealthTrack | None:
        """Probe one key now (the console's `h`); the lifecycle reports back through record()."""
        outcome = await self._probe(ref)
        return self._tracks.get(ref) if outcome is not None else None

    async def probe_all(self) -> None:
        """Probe every active key, concurrently (a slow check does not delay the others), in
        groups of PROBES_PER_TURN started one event-loop turn apart. With telemetry recording
        spans, the round is one `health.round` span: how many keys were probed and how many
        were not ok, with an event naming each of the first ROUND_EVENTS that were not (one
        span per probe would be thousands per round)."""
        tel = self._telemetry
        if tel is None or not tel.tracing:
            await self._round(self._refs())
            return
        refs = self._refs()
        with tel.span("health.round", {"oneiric.health.probes": len(refs)}) as span:
            outcomes = await self._round(refs)
            counts: dict[str, int] = {}
            for ref, outcome in zip(refs, outcomes, strict=True):
                if not isinstance(outcome, tuple):
                    continue  # nothing serves it any more, or the probe itself broke
                provider, result = outcome
                status = result.status.value
                counts[status] = counts.get(status, 0) + 1
                if status != HealthStatus.OK.value and sum(counts.values()) - counts.get("ok", 0) <= ROUND_EVENTS:
                    span.add_event("health.not_ok", {"oneiric.domain": ref.domain.value, "oneiric.key": ref.key,
                                                     "oneiric.provider": provider, "oneiric.health.status": status,
                                                     "oneiric.health.message": result.message[:200]})
            span.set_attributes({f"oneiric.health.{status}": n for status, n in counts.items()})
            if counts.get(HealthStatus.FAILED.value):
                tel.failed(span, f"{counts[HealthStatus.FAILED.value]} of {len(refs)} health checks failed")

    async def _round(self, refs: list[ComponentRef]) -> list[Any]:
        tasks = []
        for index, ref in enumerate(refs, start=1):
            tasks.append(asyncio.ensure_future(self._probe(ref)))
            if index % PROBES_PER_TURN == 0:
                await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="oneiric-health-monitor")

    def poke(self) -> None:
        """Run the next round now instead of waiting for the interval."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.probe_all()
            except Exception as exc:  # noqa: BLE001 - last line of defence: a probe round must never kill the monitor
                self._emit(Event("health-changed", f"health round failed: {exc}", Severity.ERROR))
            self._wake.clear()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
                # cancellation that stop() sends, and the loop would never end.
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
