"""What several commands print alike: the host as a line for people and as the lease for
`--json` (`status`, `health`, `remote-status`, the actions' answers), and the health table
(`health` and `health --probe`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..humanize import millis
from .output import ago, console, new_table

if TYPE_CHECKING:
    from rich.console import Console

    from ..engine import Engine
    from ..store import LeaseInfo, StateStore


def host_line(engine: Engine) -> str:
    """"host: pid 4242 on web-1 (heartbeat 2s ago)", or why no host runs."""
    from ..store import LEASE_STALE_AFTER_S

    lease, alive = engine.host()
    if lease is not None and not alive and not lease.is_stale(time.time(), LEASE_STALE_AFTER_S):
        # a fresh lease whose pid is gone on this machine: killed or crashed, not stopped
        return (f"no host running: pid {lease.pid} on {lease.hostname} is gone without releasing its lease "
                "(killed or crashed); showing configuration and last known health")
    if lease is None or not alive:
        return "no host running: showing configuration and last known health"
    return f"host: pid {lease.pid} on {lease.hostname} (heartbeat {ago(lease.heartbeat_at)})"


def host_json(engine: Engine) -> dict[str, Any] | None:
    lease, alive = engine.host()
    return lease_json(lease, engine.store, alive=alive)


def lease_json(lease: LeaseInfo | None, store: StateStore, *, alive: bool) -> dict[str, Any] | None:
    if lease is None:
        return None
    head = store.published_head()  # what `journal verify` checks the journal reaches
    return {"pid": lease.pid, "hostname": lease.hostname, "alive": alive,
            "started_at": lease.started_at, "heartbeat_age_s": round(time.time() - lease.heartbeat_at, 3),
            "head": head.to_dict() if head else None}


def print_probe_table(results: list[dict[str, Any]], header: str) -> Console:
    out = console()
    out.print(header, markup=False)
    table = new_table("COMPONENT", "PROVIDER", "HEALTH", "LATENCY", "CHECKED", "MESSAGE")
    for r in results:
        table.add_row(f"{r['domain']}/{r['key']}", r["provider"] or "-", r["status"].upper(),
                      millis(r["latency_ms"]), ago(r["checked_at"]), r["message"])
    out.print(table)
    return out


def overall_line(results: list[dict[str, Any]]) -> str:
    """"Overall: 7/8 healthy", the line upstream Oneiric's `health --probe` ends with (a
    script or runbook may look for it); healthy is a check that said ok."""
    healthy = sum(1 for r in results if r["status"] == "ok")
    return f"Overall: {healthy}/{len(results)} healthy"
