"""The Event model and the in-process bus that fans events out to live subscribers.

Every change in the engine is one Event: it is appended to the journal (the store) and
published here. Subscribers get bounded queues, so a slow reader (a busy console) can
never make the engine grow without limit: when a queue is full its oldest event is
dropped and the subscription counts the loss.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .domains import Domain


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# The kinds the engine emits today (docs/architecture.md §3); later front doors add to it.
KINDS = frozenset(
    {
        "component-registered", "component-removed", "selection-changed", "selection-edited",
        "swap-requested", "swap-approved", "swap-rejected", "swap-expired", "swap-started", "swap-complete",
        "swap-failed", "swap-rollback", "swap-interrupted", "cleanup-failed", "activation-failed",
        "health-changed", "health-probed", "activity-changed", "config-changed", "config-invalid", "config-recovered",
        "watcher-started", "watcher-stopped", "watcher-error",
        "remote-sync-started", "remote-sync-complete", "remote-sync-error",
        "signature-verification-failed", "digest-check-failed", "circuit-open", "circuit-closed",
        "manifest-rollback-refused", "manifest-expired",
        "host-started", "host-stopped", "journal-pruned", "store-error",
        "incident-opened", "incident-updated", "incident-closed",
        "maintenance-done", "maintenance-window-declared", "maintenance-window-cancelled",
        "telemetry-unavailable", "telemetry-export-failed", "telemetry-export-recovered", "telemetry-config-warning",
    }
)


@dataclass(slots=True)
class Event:
    kind: str
    message: str
    severity: Severity = Severity.INFO
    domain: Domain | None = None
    key: str | None = None
    provider: str | None = None
    actor: str | None = None
    outcome: str | None = None
    duration_ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: int | None = None  # assigned by the journal when stored
    node: str | None = None  # the node whose process wrote it (the journal sets it when stored)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["severity"] = self.severity.value
        out["domain"] = self.domain.value if self.domain else None
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        domain = raw.get("domain")
        return cls(
            kind=raw["kind"],
            message=raw.get("message") or "",
            severity=Severity(raw.get("severity") or "info"),
            domain=Domain.parse(domain) if domain else None,
            key=raw.get("key"),
            provider=raw.get("provider"),
            actor=raw.get("actor"),
            outcome=raw.get("outcome"),
            duration_ms=raw.get("duration_ms"),
            data=dict(raw.get("data") or {}),
            ts=float(raw.get("ts") or time.time()),
            id=raw.get("id"),
            node=raw.get("node"),
        )

    @property
    def ref_text(self) -> str:
        if self.domain and self.key:
            return f"{self.domain.value}/{self.key}"
        return self.domain.value if self.domain else ""


class Subscription:
    """A bounded queue of events for one reader; iterate it with `async for`."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        import asyncio  # here, not at the top: CLI processes import events but never subscribe

        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        return None if self._queue.empty() else self._queue.get_nowait()

    def drain(self) -> list[Event]:
        """Everything queued now, oldest first: lets a reader batch a burst into one update."""
        out: list[Event] = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()


class EventBus:
    """Fan-out of events to queue subscribers and synchronous listeners.

    `publish` must be called on the engine's event loop thread; listeners run inline
    and must be quick (the journal writer is one).
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscriptions.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
        for sub in list(self._subscriptions):
            sub._offer(event)
