"""`oneiric nodes`: every node of the store, from the rows their hosts keep (a lease and a
report each, node_summary.py). On a SQLite store that is this machine's one node; on a fleet
store (PostgreSQL, docs/fleet.md) it is every host that ever hosted it."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ..fleet import fleet_view, node_state
from ..humanize import age
from ..node_summary import NodeSummary
from ..store import LeaseInfo
from .output import console, new_table, print_json, say
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine


def add_parsers(commands: Commands) -> None:
    p = commands.add("fleet", "the fleet: each node's health, and per key the provider each node serves, with drift "
                     "(nodes that differ, or differ from the settings) marked", run=cmd_fleet,
                     example=["oneiric fleet", "oneiric fleet --drift", "oneiric fleet --json"])
    p.add_argument("--drift", action="store_true", help="only the keys with drift")
    commands.add("nodes", "every node of the store: its host's state and version, heartbeat age, serving, failing, "
                 "paused and misconfigured keys, manifest versions per source", run=cmd_nodes,
                 example=["oneiric nodes", "oneiric nodes --json"])


def node_json(lease: LeaseInfo, now: float) -> dict[str, Any]:
    summary = NodeSummary.from_dict(lease.summary)
    return {
        "node": lease.node, "state": node_state(lease, now), "version": lease.version or None,
        "hostname": lease.hostname, "pid": lease.pid, "started_at": lease.started_at,
        "heartbeat_at": lease.heartbeat_at, "heartbeat_age_s": round(max(0.0, now - lease.heartbeat_at), 3),
        "stopped_at": lease.stopped_at, "serving": summary.serving, "failing": summary.failing,
        "paused": summary.paused, "misconfigured": summary.misconfigured, "manifests": summary.manifests,
        "reported_at": summary.at or None,
    }


def cmd_nodes(engine: Engine, args: argparse.Namespace) -> int:
    now = time.time()
    nodes = [node_json(lease, now) for lease in engine.store.nodes()]
    if args.json:
        print_json({"store": engine.store.where, "node": engine.node, "nodes": nodes})
        return 0
    if not nodes:
        say(f"No host has run on the store {engine.store.where} yet.")
        return 0
    table = new_table("NODE", "STATE", "VERSION", "HEARTBEAT", "SERVING", "FAILING", "PAUSED", "MISCONF", "MANIFESTS")
    for n in nodes:
        manifests = ", ".join(f"{name} v{version}" if version is not None else f"{name} -"
                              for name, version in sorted(n["manifests"].items())) or "-"
        heartbeat = "-" if n["state"] == "stopped" else f"{age(n['heartbeat_at'], now)} ago"
        reported = n["reported_at"] is not None
        table.add_row(n["node"], n["state"], n["version"] or "?", heartbeat,
                      *(str(n[k]) if reported else "?" for k in ("serving", "failing", "paused", "misconfigured")),
                      manifests if reported else "?")
    console().print(table)
    return 0


def cmd_fleet(engine: Engine, args: argparse.Namespace) -> int:
    """Exit 0 when the fleet agrees, 1 when a key drifts or a node is not live (for scripts)."""
    fleet = fleet_view(engine)
    troubled = bool(fleet.drifted) or any(n.state != "live" for n in fleet.nodes)
    if args.json:
        print_json({"store": engine.store.where, **fleet.to_dict()})
        return 1 if troubled else 0
    if not fleet.nodes:
        say(f"No host has run on the store {engine.store.where} yet.")
        return 0
    names = [n.name for n in fleet.nodes]
    say("  ".join(f"{n.name}: {n.health}" for n in fleet.nodes))
    table = new_table("KEY", "SETTINGS", *(name.upper() for name in names), "DRIFT")
    rows = fleet.drifted if args.drift else fleet.rows
    for row in rows:
        cells = []
        for name in names:
            cell = row.cells.get(name)
            cells.append("-" if cell is None else f"{cell.provider or '-'} {cell.health}")
        table.add_row(row.ref, row.selected or "-", *cells, row.drift or "")
    console().print(table)
    say(f"{len(fleet.drifted)} of {len(fleet.rows)} keys drift." if fleet.drifted else
        f"No drift: every live node serves what the settings select ({len(fleet.rows)} keys).")
    return 1 if troubled else 0
