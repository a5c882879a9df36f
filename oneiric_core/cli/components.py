"""The read commands over components: status, list, explain, health (last known; `--probe`
is an action, acting.py) and activity."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode
from .output import ago, console, new_table, print_json
from .parser import Commands, waits
from .views import host_json, host_line, overall_line, print_probe_table

if TYPE_CHECKING:
    from ..domains import ComponentRef
    from ..engine import Engine
    from ..store import ActivityRecord


def add_parsers(commands: Commands) -> None:
    commands.add("status", "every component: winner, serving provider, state, activity, health", run=cmd_status,
                 ref="optional", positional_key=True,
                 example=["oneiric status", "oneiric status --key cache --json", "oneiric status web-2:cache"])
    p = commands.add("list", "every registered candidate and how it ranks", run=cmd_list, ref="optional",
                     example=["oneiric list --domain adapter", "oneiric list --shadowed"])
    p.add_argument("--shadowed", "--show-shadowed", action="store_true", help="only candidates that do not win")
    p.add_argument("--all", action="store_true", help=argparse.SUPPRESS)  # upstream's runbooks: the default here
    commands.add("explain", "why a provider wins a key: every candidate in rank order with the deciding rule",
                 run=cmd_explain, ref="required", positional_key=True,
                 example=["oneiric explain cache", "oneiric explain --domain adapter --key cache",
                          "oneiric explain web-2:cache"])
    p = commands.add("health", "last known health, or probe now with --probe", run=cmd_health, ref="optional",
                     positional_key=True, example=["oneiric health", "oneiric health --probe --key cache",
                                                   "oneiric health web-2:cache"])
    p.add_argument("--probe", action="store_true", help="probe now: the running host's live providers "
                   "(journaled), else build each provider here, probe it and stop it")
    waits(p)
    commands.add("activity", "paused, draining and drained keys", run=cmd_activity,
                 example="oneiric activity --json")


# -- resolving --domain/--key ----------------------------------------------------------------------
def pick_ref(engine: Engine, domain: str | None, key: str) -> ComponentRef:
    """`--key cache` alone works when only one domain has that key."""
    return engine.find_ref(domain, key)


def filter_refs(engine: Engine, domain: str | None, key: str | None) -> list[ComponentRef]:
    from ..domains import Domain

    if key:
        return [pick_ref(engine, domain, key)]
    refs = engine.resolver.refs()
    if domain:
        d = Domain.parse(domain)
        refs = [r for r in refs if r.domain == d]
    return list(refs)


def cmd_status(engine: Engine, args: argparse.Namespace) -> int:
    refs = set(filter_refs(engine, args.domain, args.key))
    rows = [c for c in engine.components() if c.ref in refs]
    problems = engine.settings.problems
    from .. import retention
    from ..private_files import audit

    wide = audit(engine.state_dir)  # state files others may read or the group may write
    from ..upstream_settings import notices

    not_read = notices(engine.settings_dir)  # upstream Oneiric files and variables, which nothing here reads
    if args.json:
        print_json({
            "settings_dir": str(engine.settings_dir), "state_dir": str(engine.state_dir),
            "host": host_json(engine), "read_only": engine.read_only,
            "watcher": engine.watcher_status().to_dict(), "telemetry": engine.telemetry_status().to_dict(),
            "journal_retention": retention.last_report(engine.store),
            "config_problems": [p.to_dict() for p in problems],
            "warnings": [w.to_dict() for w in wide],
            "not_read": not_read,
            "components": [c.to_dict() for c in rows],
        })
        return ExitCode.OK
    out = console()
    out.print(f"settings: {engine.settings_dir}   state: {engine.state_dir}")
    if args.target_node:
        out.print(f"node: {engine.node} (read from the store: what its host last reported)", markup=False)
    out.print(host_line(engine))
    for w in wide:
        out.print(f"warning: {w.sentence()}", markup=False, style="yellow", soft_wrap=True)
    for notice in not_read:
        out.print(f"not read: {notice}", markup=False, style="yellow", soft_wrap=True)
    out.print(f"settings watcher: {engine.watcher_status().describe()}", markup=False)
    held = retention.status_line(engine.store)  # an open incident holds the journal's retention back
    if held:
        out.print(held, markup=False, style="yellow", soft_wrap=True)
    telemetry = engine.telemetry_status()
    out.print(telemetry.describe(), markup=False, style="red" if telemetry.problem else None, soft_wrap=True)
    for p in problems:
        out.print(f"config invalid: {p}; {engine.settings.fallback(p)}", markup=False, style="red")
    table = new_table("COMPONENT", "WINNER", "SERVING", "STATE", "ACTIVITY", "HEALTH", "NOTES")
    for c in rows:
        notes = []
        if c.misconfigured:
            notes.append(f"MISCONFIGURED: selects '{c.selection}', not registered")
        elif c.selection:
            notes.append("selected")
        if c.shadowed:
            notes.append(f"{c.shadowed} shadowed")
        if c.last_error:
            notes.append(f"last error: {c.last_error}")
        if c.proposal:
            prop = c.proposal
            notes.append(f"proposal #{prop['id']} pending: {prop['from'] or 'nothing'} -> {prop['to']} "
                         f"({prop['source']})")
        latency = f" {c.latency_ms:.1f}ms" if c.latency_ms is not None else ""
        table.add_row(
            str(c.ref), f"{c.winner} ({c.winner_source})" if c.winner else "-",
            c.serving or "-", c.state, c.activity, f"{c.health}{latency}", "; ".join(notes),
        )
    out.print(table)
    return ExitCode.OK


def cmd_list(engine: Engine, args: argparse.Namespace) -> int:
    rows = []
    for ref in filter_refs(engine, args.domain, args.key):
        for r in engine.explain(ref.domain, ref.key).ranked:
            if args.shadowed and r.winner:
                continue
            rows.append({"domain": ref.domain.value, "key": ref.key, **r.to_dict()})
    if args.json:
        print_json({"candidates": rows})
        return ExitCode.OK
    table = new_table("COMPONENT", "PROVIDER", "SOURCE", "PRIO", "STACK", "", "WHY")
    for row in rows:
        mark = "* winner" if row["winner"] else "- shadowed"
        table.add_row(f"{row['domain']}/{row['key']}", row["provider"], row["source"], str(row["priority"]),
                      str(row["effective_stack_level"]), mark, row["reason"])
    console().print(table)
    return ExitCode.OK


def cmd_explain(engine: Engine, args: argparse.Namespace) -> int:
    ref = pick_ref(engine, args.domain, args.key)
    exp = engine.explain(ref.domain, ref.key)
    served = _served_on_node(engine, ref) if args.target_node else None
    if args.json:
        print_json({**exp.to_dict(), **({"node": served} if served else {})})
        return ExitCode.OK
    out = console()
    winner = exp.winner
    out.print(f"{ref}: {winner.provider} ({winner.source}) wins" if winner else f"{ref}: no candidate")
    if served:
        health = served["health"] + (f": {served['health_message']}" if served["health_message"] else "")
        out.print(f"node {served['node']}: serving {served['serving'] or 'nothing'} ({served['state']}, "
                  f"{served['activity']}), health {health}; {served['host']}", markup=False)
    if exp.misconfigured and winner is None:
        out.print(f"MISCONFIGURED: {exp.misconfigured}; nothing can serve this key", markup=False, style="red")
    elif exp.misconfigured:
        out.print(f"MISCONFIGURED: {exp.misconfigured}; ranking picked a fallback", markup=False, style="red")
    elif exp.selection:
        out.print(f"selection: {exp.selection} ({exp.selection_file})")
    else:
        out.print(f"selection: none in {exp.selection_file}")
    table = new_table("#", "PROVIDER", "SOURCE", "PRIO", "STACK", "REASON")
    for r in exp.ranked:
        c = r.candidate
        table.add_row(str(r.rank), c.provider, c.source, str(c.priority), str(r.effective_stack_level), r.reason)
    out.print(table)
    out.print("factories:")
    for r in exp.ranked:
        out.print(f"  {r.candidate.provider}: {r.candidate.factory}")
    return ExitCode.OK


def _served_on_node(engine: Engine, ref: ComponentRef) -> dict[str, Any]:
    """What the viewed node serves for `ref`, from the store (its host's snapshots): `explain
    web-2:cache` ranks by this process's settings, which a fleet's nodes share, and says
    what web-2 actually serves."""
    status = next((c for c in engine.components([ref])), None)
    return {"node": engine.node, "host": host_line(engine), "serving": status.serving if status else None,
            "state": status.state if status else "inactive", "activity": status.activity if status else "active",
            "health": status.health if status else "unknown",
            "health_message": status.health_message if status else None}


def cmd_health(engine: Engine, args: argparse.Namespace) -> int:
    """Last known health (a probe, `--probe`, is an action: acting.cmd_act)."""
    if args.probe:
        from .acting import cmd_act

        return cmd_act(engine, args)
    refs = filter_refs(engine, args.domain, args.key)
    wanted = {(r.domain.value, r.key) for r in refs}
    results = []
    for c in engine.components():
        if (c.ref.domain.value, c.ref.key) in wanted:
            results.append({"domain": c.ref.domain.value, "key": c.ref.key,
                            "provider": c.serving or c.winner, "status": c.health,
                            "latency_ms": c.latency_ms, "message": c.health_message,
                            "checked_at": c.health_checked_at})
    failed = [r for r in results if r["status"] == "failed"]
    if args.json:
        print_json({"probed": False, "host": host_json(engine), "results": results})
    else:
        out = print_probe_table(results, host_line(engine))
        if failed:
            out.print(f"{len(failed)} unhealthy: " + ", ".join(f"{r['domain']}/{r['key']}" for r in failed))
        out.print(overall_line(results))
    return ExitCode.UNHEALTHY if failed else ExitCode.OK


def _activity_json(rec: ActivityRecord) -> dict[str, Any]:
    return {"domain": rec.domain, "key": rec.key, "state": rec.state, "note": rec.note,
            "actor": rec.actor, "updated_at": rec.updated_at}


def cmd_activity(engine: Engine, args: argparse.Namespace) -> int:
    records = engine.activity.all()
    totals = {s: sum(1 for r in records if r.state == s) for s in ("paused", "draining", "drained")}
    if args.json:
        print_json({"activity": [_activity_json(r) for r in records], "totals": totals})
        return ExitCode.OK
    out = console()
    if not records:
        out.print("Every key accepts work: nothing is paused, draining or drained.")
        return ExitCode.OK
    table = new_table("COMPONENT", "STATE", "BY", "SINCE", "NOTE")
    for r in records:
        table.add_row(f"{r.domain}/{r.key}", r.state.upper(), r.actor or "-", ago(r.updated_at), r.note or "")
    out.print(table)
    out.print(", ".join(f"{n} {s}" for s, n in totals.items()))
    return ExitCode.OK
