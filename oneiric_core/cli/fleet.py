"""`oneiric nodes`: every node of the store, from the rows their hosts keep (a lease and a
report each, node_summary.py). On a SQLite store that is this machine's one node; on a fleet
store (PostgreSQL, docs/fleet.md) it is every host that ever hosted it."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ..humanize import age
from ..node_summary import NodeSummary
from ..store import LEASE_STALE_AFTER_S, LeaseInfo
from .output import console, new_table, print_json, say
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine


def add_parsers(commands: Commands) -> None:
    commands.add("nodes", "every node of the store: its host's state and version, heartbeat age, serving, failing, "
                 "paused and misconfigured keys, manifest versions per source", run=cmd_nodes,
                 example=["oneiric nodes", "oneiric nodes --json"])


def node_state(lease: LeaseInfo, now: float) -> str:
    """live (its host heartbeats), stale (its host stopped heartbeating: dead or hung) or stopped."""
    if lease.stopped_at is not None:
        return "stopped"
    return "stale" if lease.is_stale(now, LEASE_STALE_AFTER_S) else "live"


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
