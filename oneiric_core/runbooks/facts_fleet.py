"""Facts of a fleet (a store many hosts share, docs/fleet.md), for the rolling-update tree:
whether the store is a fleet's, how the newest rollout stands, and whether every node runs one
version of the program. Each reads the rows the hosts keep in the store (their node rows,
the rollouts), as `oneiric nodes` and `oneiric rollout status` do.

Registered in facts.FACTS on import; fact_index.py imports this module with facts.py."""

from __future__ import annotations

import time

from ..fleet import node_state
from .facts import FactContext, FactResult, fact

GLOBAL_SIDE_EFFECT_FREE = ("fleet.mode", "fleet.rollout", "fleet.versions")


@fact("fleet.mode", "whether the store is a fleet's (fleet: many nodes share it | single-host: a SQLite file)")
async def fleet_mode(ctx: FactContext) -> FactResult:
    store = ctx.engine.store
    if store.backend.holds_one_node:
        return FactResult("single-host", [f"The store {store.where} is this host's SQLite file: one node."])
    nodes = store.nodes()
    return FactResult("fleet", [f"The store {store.where} is shared: {len(nodes)} node(s) have hosted it "
                                f"({', '.join(n.node for n in nodes) or 'none yet'})."])


@fact("fleet.rollout", "the newest rollout (done | running | halted | pending | none), batch by batch")
async def fleet_rollout(ctx: FactContext) -> FactResult:
    recent = ctx.engine.store.rollouts.recent(limit=1)
    if not recent:
        return FactResult("none", ["No rollout has been started on this store ('oneiric rollout --key D/K "
                                   "--provider P')."])
    r = recent[0]
    value = {"approved": "running", "halting": "halted", "rejected": "none"}.get(r.status, r.status)
    done = sum(1 for s in r.steps if s.status == "done")
    evidence = [f"Rollout #{r.id}: {r.ref} to {r.provider}, {r.status}; {done} of {len(r.steps)} node(s) done"
                + (f"; halted: {r.halted_reason}" if r.halted_reason else "") + "."]
    evidence += [f"batch {s.batch + 1}: {s.node} {s.status}" + (f" ({s.message})" if s.message else "")
                 for s in r.steps]
    return FactResult(value, evidence, data={"rollout": r.id})


@fact("fleet.versions", "whether every live node runs one version of oneiric (same | differs | stale: a node "
      "is not live)")
async def fleet_versions(ctx: FactContext) -> FactResult:
    now = time.time()
    nodes = [n for n in ctx.engine.store.nodes() if n.stopped_at is None]
    if not nodes:
        return FactResult("stale", ["No node of this store is running."])
    lines = [f"{n.node}: {n.version or '?'} ({node_state(n, now)})" for n in nodes]
    if any(node_state(n, now) != "live" for n in nodes):
        return FactResult("stale", ["Not every node is live, so not every node's version is known:", *lines])
    versions = {n.version for n in nodes}
    if len(versions) > 1:
        return FactResult("differs", [f"The nodes run {len(versions)} versions:", *lines])
    return FactResult("same", [f"Every node ({len(nodes)}) runs {next(iter(versions)) or '?'}:", *lines])
