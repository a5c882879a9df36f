"""What a host reports of its node for `oneiric nodes` and the fleet view: how many keys it
serves, how many fail, are paused or misconfigured, and which manifest version of each remote
source is in force. The host writes it with its heartbeat now and then (host_session.py), so a
reader anywhere in the fleet gets every node's figures from one row each, without loading any
node's settings."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .domains import HealthStatus
from .errors import NotFound
from .lifecycle import LifecycleState

if TYPE_CHECKING:
    from .ports import NodeEngine

REPORT_EVERY_S = 10.0  # how often the heartbeat rewrites the report (a key count changes rarely)


@dataclass(frozen=True, slots=True)
class NodeSummary:
    serving: int = 0  # keys with a provider bound and ready
    failing: int = 0  # keys whose slot failed or whose serving provider fails its health check
    paused: int = 0  # keys paused, draining or drained
    misconfigured: int = 0  # keys whose selection in settings names no registered provider
    manifests: dict[str, Any] = field(default_factory=dict)  # remote source -> manifest version in force
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NodeSummary:
        def count(name: str) -> int:
            value = raw.get(name)
            return value if isinstance(value, int) else 0

        manifests = raw.get("manifests")
        at = raw.get("at")
        return cls(count("serving"), count("failing"), count("paused"), count("misconfigured"),
                   dict(manifests) if isinstance(manifests, dict) else {},
                   float(at) if isinstance(at, (int, float)) else 0.0)


def summarize(engine: NodeEngine) -> NodeSummary:
    """The host's node as its own engine knows it (in memory, no store reads)."""
    serving = 0
    failing: set[Any] = set()
    for slot in engine.lifecycle.slots():
        if slot.state is LifecycleState.READY and slot.current is not None:
            serving += 1
        elif slot.state is LifecycleState.FAILED:
            failing.add(slot.ref)
    failing.update(t.ref for t in engine.health.tracks() if t.status is HealthStatus.FAILED)
    paused = sum(1 for record in engine.activity.all() if record.state != "active")
    misconfigured = 0
    for ref in engine.resolver.refs():
        try:
            if engine.resolver.summary(ref).misconfigured:
                misconfigured += 1
        except NotFound:
            continue
    manifests = {}
    for status in engine.remote.statuses():
        manifest = status.get("manifest") if isinstance(status, dict) else None
        manifests[str(status.get("name"))] = manifest.get("version") if isinstance(manifest, dict) else None
    return NodeSummary(serving, len(failing), paused, misconfigured, manifests, time.time())
