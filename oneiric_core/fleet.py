"""The fleet as one picture (issue 18 point 5): every node with its health roll-up, and a key x
node matrix of the provider each node serves and its health, with drift marked: a key whose
serving provider differs across the live nodes, or differs from what the settings select.

Built from rows every host keeps in the store (its lease and report, its lifecycle and health
snapshots: leases.py, snapshots.py), so any process that can read the store draws it, with no
node's settings but its own (the "settings" column is this process's resolver: the fleet is
expected to share its settings, and a node whose settings differ shows as drift)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import NotFound
from .node_summary import NodeSummary
from .store import LEASE_STALE_AFTER_S, LeaseInfo

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True, slots=True)
class FleetNode:
    name: str
    state: str  # live, stale, stopped
    version: str
    heartbeat_age_s: float
    summary: NodeSummary

    @property
    def health(self) -> str:
        """The node's roll-up: stale or stopped before anything its host said, then failing
        (a key fails), paused (a key is paused or draining), ok."""
        if self.state != "live":
            return self.state
        if self.summary.failing:
            return "failing"
        return "paused" if self.summary.paused else "ok"


@dataclass(frozen=True, slots=True)
class FleetCell:
    provider: str | None  # what the node serves (None: nothing)
    state: str  # the slot's lifecycle state there
    health: str  # ok, degraded, failed, unknown


@dataclass(slots=True)
class FleetRow:
    ref: str  # domain/key
    selected: str | None  # what this process's settings make the winner
    cells: dict[str, FleetCell] = field(default_factory=dict)  # node -> cell
    drift: str | None = None  # why the row is marked, or None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "selected": self.selected, "drift": self.drift,
                "nodes": {n: {"provider": c.provider, "state": c.state, "health": c.health}
                          for n, c in self.cells.items()}}


@dataclass(slots=True)
class Fleet:
    nodes: list[FleetNode]
    rows: list[FleetRow]

    @property
    def drifted(self) -> list[FleetRow]:
        return [r for r in self.rows if r.drift]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [{"node": n.name, "state": n.state, "health": n.health, "version": n.version or None,
                       "heartbeat_age_s": round(n.heartbeat_age_s, 3), **n.summary.to_dict()} for n in self.nodes],
            "keys": [r.to_dict() for r in self.rows],
            "drift": [r.ref for r in self.drifted],
        }


def node_state(lease: LeaseInfo, now: float) -> str:
    """live (its host heartbeats), stale (its host stopped heartbeating: dead or hung) or stopped."""
    if lease.stopped_at is not None:
        return "stopped"
    return "stale" if lease.is_stale(now, LEASE_STALE_AFTER_S) else "live"


def drift_of(row: FleetRow, live: set[str]) -> str | None:
    """Why a row is drift: the live nodes serve different providers, or one serves other than
    the settings select; None when they agree (nodes serving nothing are left out: activating
    or paused is not drift)."""
    serving = {n: c.provider for n, c in row.cells.items() if n in live and c.provider is not None}
    if len(set(serving.values())) > 1:
        by = ", ".join(f"{n}: {p}" for n, p in sorted(serving.items()))
        return f"nodes serve different providers ({by})"
    if serving and row.selected is not None:
        provider = next(iter(serving.values()))
        if provider != row.selected:
            return f"served {provider}, the settings select {row.selected}"
    return None


def fleet_view(engine: Engine, now: float | None = None) -> Fleet:
    at = time.time() if now is None else now
    store = engine.store
    leases = store.nodes()
    nodes = [FleetNode(lease.node, node_state(lease, at), lease.version, max(0.0, at - lease.heartbeat_at),
                       NodeSummary.from_dict(lease.summary)) for lease in leases]
    one_node = store.backend.holds_one_node
    # A SQLite file is one node's: its rows are that node's whatever name wrote them.
    current = next((n.name for n in nodes if n.state == "live"), nodes[0].name if nodes else engine.node)

    def owner(node: str) -> str:
        return current if one_node else node

    rows: dict[str, FleetRow] = {}
    for ref in engine.resolver.refs():
        try:
            winner = engine.resolver.summary(ref).winner
        except NotFound:
            continue
        rows[str(ref)] = FleetRow(str(ref), winner.provider if winner else None)
    for cell in store.fleet_cells():
        name, key = owner(cell.node or current), f"{cell.domain}/{cell.key}"
        row = rows.setdefault(key, FleetRow(key, None))
        row.cells[name] = FleetCell(cell.provider, cell.state, cell.health or "unknown")
    live = {n.name for n in nodes if n.state == "live"}
    for row in rows.values():
        row.drift = drift_of(row, live)
    return Fleet(nodes, sorted(rows.values(), key=lambda r: r.ref))
