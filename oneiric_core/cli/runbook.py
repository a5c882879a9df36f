"""`oneiric runbook {list,show,check,walk,drill}` and `oneiric incident {open,list,show,note,update,close,export}`.

parser.py builds the command line and main.py dispatches; this module adds these subcommands
and implements them. Exit codes are errors.ExitCode: OK, ERROR (a broken runbook file), USAGE,
NOT_FOUND.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ExitCode
from ..text import one_line
from .output import json_text, say
from .parser import Handler

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = ExitCode.OK, ExitCode.ERROR, ExitCode.USAGE, ExitCode.NOT_FOUND


def add_parsers(sub: Any) -> None:
    runbook = sub.add_parser("runbook", help="runbook decision trees (the defaults and settings/runbooks/)",
                             description="runbook decision trees: the package's defaults, with settings/runbooks/ "
                             "added over them", example=["oneiric runbook list", "oneiric runbook show remote-sync"])
    runbook.set_defaults(handler=Handler(cmd_runbook))
    rsub = runbook.add_subparsers(dest="runbook_command", metavar="ACTION", parser_class=sub._parser_class)
    p = rsub.add_parser("list", help="every runbook, flagging an overdue next_review",
                        example="oneiric runbook list --json")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = rsub.add_parser("show", help="one runbook's nodes and branches",
                        example="oneiric runbook show hot-swap-failed")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = rsub.add_parser("check", help="run every automated check of every runbook against the engine",
                        example="oneiric runbook check")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = rsub.add_parser("walk", help="walk one runbook in this terminal (prompts on a TTY; --answer for scripts); "
                        "opens no incident",
                        description="Walk one runbook against the engine in this terminal: the checks run by "
                        "themselves; questions and actions are asked on a terminal (the safe choice first) or "
                        "answered with --answer. Walking opens no incident.",
                        example=["oneiric runbook walk component-not-found --key cache",
                                 "oneiric runbook walk component-not-found --key cache --answer intentional=no "
                                 "--answer resume=perform --json"])
    p.add_argument("id", metavar="ID")
    p.add_argument("--domain", help="adapter, service, task, event, workflow or action")
    p.add_argument("--key", help="the component key, e.g. cache (it need not exist: see component-not-found)")
    p.add_argument("--source", help="a remote source name (remote-sync)")
    p.add_argument("--target", help="the provider a swap step aims at")
    p.add_argument("--answer", action="append", default=[], metavar="NODE=CHOICE",
                   help="answer NODE (or RUNBOOK:NODE) with CHOICE: its label, number or first words; actions "
                   "take perform or stop (repeatable; a node answered twice takes them in order)")
    p.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                   help="how long a swap step waits for an approver before the walk stops (default 300)")
    p.add_argument("--json", action="store_true", help="print the path taken, each check's verdict and evidence, "
                   "and the exit node as JSON")
    p = rsub.add_parser("drill", help="run runbook drills: inject each scenario's fault into a throw-away copy and "
                        "check the walk ends where the tree says",
                        description="Run the drills of one runbook (or --all): each copies the settings to a "
                        "temporary directory with a fresh state, injects its fault, starts a real host there, walks "
                        "the tree with the drill's scripted answers and checks the exit node. Exit 1 if any fails.",
                        example=["oneiric runbook drill --all", "oneiric runbook drill hot-swap-failed --json",
                                 "oneiric runbook drill component-not-found --drill paused-key-resumed --interactive",
                                 "oneiric runbook drill hot-swap-failed --interactive --console"])
    p.add_argument("id", metavar="ID", nargs="?")
    p.add_argument("--all", action="store_true", help="every drill of every runbook")
    p.add_argument("--drill", metavar="NAME", help="only this drill of the runbook")
    p.add_argument("--interactive", action="store_true",
                   help="a game day in this terminal: the fault is injected, you answer every step, and the score "
                   "is whether you reach the exit the drill expects (one drill: --drill NAME, default the first)")
    p.add_argument("--console", action="store_true",
                   help="with --interactive: the game day in the console, which hosts the throw-away copy (quit it "
                   "to end the game day; the score is printed)")
    p.add_argument("--json", action="store_true", help="print JSON")

    incident = sub.add_parser("incident", help="incidents: open, list, show, note, update, close, export",
                              description="incidents: open, list, show, note, update, close, export",
                              example=["oneiric incident list", "oneiric incident show 5"])
    incident.set_defaults(handler=Handler(cmd_incident))
    isub = incident.add_subparsers(dest="incident_command", metavar="ACTION", parser_class=sub._parser_class)
    p = isub.add_parser("open", help="open an incident",
                        example="oneiric incident open --severity P1 --title 'cache rollbacks' "
                        "--component adapter/cache")
    p.add_argument("--severity", required=True, help="P0, P1, P2 or P3")
    p.add_argument("--title", required=True)
    p.add_argument("--summary", default="")
    p.add_argument("--component", action="append", default=[], metavar="DOMAIN/KEY",
                   help="a component involved (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = isub.add_parser("list", help="incidents, newest first", example="oneiric incident list --status open")
    p.add_argument("--status", choices=["open", "mitigated", "closed"])
    p.add_argument("--from", dest="from_node", metavar="NODE",
                   help="only the incidents opened on node NODE (a fleet store holds every node's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = isub.add_parser("show", help="one incident with its timeline", example="oneiric incident show 5 --json")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = isub.add_parser("note", help="add a note to an incident's timeline",
                        example="oneiric incident note 5 'redis back after the failover'")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("text", metavar="TEXT")
    p = isub.add_parser("update", help="change an incident's severity, status or title (on its timeline)",
                        example="oneiric incident update 5 --status mitigated")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--severity", help="P0, P1, P2 or P3")
    p.add_argument("--status", choices=["open", "mitigated"], help="closing takes 'incident close'")
    p.add_argument("--title")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = isub.add_parser("close", help="close an incident with its resolution",
                        example="oneiric incident close 5 --resolution 'swapped back to memory' "
                        "--root-cause 'redis down' --follow-up 'alert on redis'")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--resolution", required=True)
    p.add_argument("--root-cause")
    p.add_argument("--follow-up", action="append", default=[], metavar="TEXT", help="a follow-up (repeatable)")
    p = isub.add_parser("export", help="the post-mortem (or with --handoff the escalation hand-off) in Markdown",
                        example="oneiric incident export 5 --out postmortem-5.md")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--format", default="md", choices=["md"])
    p.add_argument("--handoff", action="store_true", help="write the escalation hand-off instead")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: print)")
    p = isub.add_parser("message", help="the announcement, a status update, the all-clear or a ticket body, filled "
                        "from the incident (recorded on its timeline; --send posts it to the severity's webhook)",
                        example=["oneiric incident message 5 --kind announce",
                                 "oneiric incident message 5 --kind update --format markdown --send"])
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--kind", required=True, choices=["announce", "update", "resolved", "ticket"])
    p.add_argument("--format", dest="message_format", default="text", choices=["text", "markdown", "json"])
    p.add_argument("--send", action="store_true", help="post it to app.yml escalation.webhooks.<severity>")


def _upkeep(engine: Any, catalog: Any, tree: Any) -> None:
    """What `runbook show` says of a tree's upkeep: open follow-ups, file history, drills."""
    from ..runbooks.upkeep import drill_results, history, open_follow_ups

    for f in open_follow_ups(engine, catalog).get(tree.id, []):
        say(f"follow-up from incident #{f.incident} ({f.title}): {f.text} (open until 'reviewed' moves past "
            f"{time.strftime('%Y-%m-%d', time.localtime(f.closed_at))})")
    changes = history(Path(tree.file))
    if changes is None:
        say("history: the settings directory is not a git repository")
    elif not changes:
        say("history: not committed yet")
    else:
        say("history (newest first):")
        for line in changes[:5]:
            say(f"  {line if len(line) <= 110 else line[:109] + '…'}")
    results = drill_results(engine.store, tree.id)
    for drill in getattr(tree, "drills", []):
        last = results.get(drill.id)
        state = ("never run" if last is None else
                 f"{'passed' if last['passed'] else 'FAILED'} "
                 f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(last['at']))}")
        say(f"drill {drill.id}: {state}")


def _catalog(engine: Any) -> Any:
    from ..runbooks.loader import load_catalog

    return load_catalog(engine.settings_dir, roles=list(engine.settings.app.escalation.roles))


def _print_json(data: Any) -> None:
    say(json_text(data, indent=2, sort_keys=True))


def _errors(catalog: Any) -> int:
    for error in catalog.errors:
        say(f"oneiric: {error}", err=True)
    return EXIT_ERROR if catalog.errors else EXIT_OK


def cmd_runbook(engine: Any, args: Any) -> int:
    from ..errors import UsageError

    action = args.runbook_command
    if action is None:
        raise UsageError("runbook needs an action: list, show, check, walk or drill (see 'oneiric runbook --help').")
    if action == "walk":
        from .runbook_walk import cmd_walk

        return cmd_walk(engine, args, _catalog(engine))
    if action == "drill":
        from .runbook_walk import cmd_drill

        return cmd_drill(engine, args)
    catalog = _catalog(engine)
    if action == "list":
        import datetime as dt  # here, not at the top: every `oneiric --help` would import it

        from ..runbooks.upkeep import open_follow_ups

        today = dt.date.today()
        follow = open_follow_ups(engine, catalog)
        rows = [{"id": t.id, "title": t.title, "kind": t.kind, "params": t.params, "reviewed": str(t.reviewed),
                 "next_review": str(t.next_review), "overdue": t.overdue(today), "nodes": len(t.nodes),
                 "file": str(t.file), "follow_ups": [f.to_dict() for f in follow.get(t.id, [])]}
                for t in sorted(catalog.trees.values(), key=lambda t: (t.kind, t.id))]
        if args.json:
            _print_json({"runbooks": rows, "errors": catalog.errors})
        else:
            for r in rows:
                flag = "  OVERDUE review" if r["overdue"] else ""
                if r["follow_ups"]:
                    flag += "  FOLLOW-UP from " + ", ".join(f"#{f['incident']}" for f in r["follow_ups"])
                say(f"{r['id']:<24} {r['kind']:<9} next review {r['next_review']}{flag}  {r['title']}")
            if not rows:
                say(f"no runbooks in {catalog.where()}")
        return _errors(catalog)
    if action == "show":
        tree = catalog.get(args.id)
        if args.json:
            _print_json({"id": tree.id, "title": tree.title, "summary": tree.summary, "kind": tree.kind,
                         "params": tree.params, "start": tree.start, "reviewed": str(tree.reviewed),
                         "next_review": str(tree.next_review), "overdue": tree.overdue(),
                         "nodes": [{"id": n.id, "kind": n.kind, "text": n.text, "fact": n.fact, "action": n.action,
                                    "role": n.role, "branches": n.branches, "choices": n.choices,
                                    "default": n.default, "next": n.next, "sets": n.sets, "then": n.then}
                                   for n in tree.nodes.values()]})
            return EXIT_OK
        say(f"{tree.title} ({tree.id}){'  OVERDUE review' if tree.overdue() else ''}")
        if tree.summary:
            say(tree.summary)
        say(f"params: {', '.join(tree.params) or 'none'}; reviewed {tree.reviewed}, next review {tree.next_review}")
        _upkeep(engine, catalog, tree)
        for n in tree.nodes.values():
            what = n.fact or n.action or n.role or ""
            say(f"\n[{n.id}] {n.kind}{' ' + what if what else ''}{'  (start)' if n.id == tree.start else ''}")
            if n.text:
                say(f"  {n.text}")
            for label, target in {**n.branches, **n.choices}.items():
                say(f"  {label} -> {target}")
            if n.sets:
                say(f"  (the answer sets the {n.sets})")
            for label, target in (("otherwise", n.default), ("next", n.next), ("when that runbook ends", n.then)):
                if target:
                    say(f"  {label} -> {target}")
        return EXIT_OK
    if action == "check":
        import asyncio

        from ..runbooks.doctor import run_checks

        findings = asyncio.run(run_checks(catalog, engine))
        if args.json:
            _print_json({"findings": [f.to_dict() for f in findings], "errors": catalog.errors})
        else:
            for f in findings:
                mark = "!!" if f.bad else "--" if f.value in ("unknown", "pending", "not-host", "no-host") else "ok"
                subject = f" {f.subject}" if f.subject else ""
                say(f"{mark} {f.fact}{subject}: {f.value}   (used by {', '.join(f.trees)})")
                for line in f.evidence:
                    say(f"     {line}")
            problems = sum(f.bad for f in findings)
            say(f"\n{len(findings)} check(s), {problems} finding(s) worth a look (!!); -- means the check "
                  "could not tell.")
        return _errors(catalog)
    raise UsageError(f"unknown runbook action '{action}'.")


def _incidents(engine: Any) -> Any:
    from ..runbooks.incidents import Incidents

    return Incidents(engine)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def cmd_incident(engine: Any, args: Any) -> int:
    from ..errors import OneiricError, ReadOnlyError, UsageError

    action = args.incident_command
    if action is None:
        raise UsageError("incident needs an action: open, list, show, note, update, close, export or message.")
    if action == "message":
        from .incident_message import cmd_message

        return cmd_message(engine, args)
    incidents = _incidents(engine)
    if action in ("open", "note", "update", "close") and engine.read_only:
        raise ReadOnlyError(f"Read-only mode: incident {action} is disabled.")
    if action == "open":
        for comp in args.component:
            domain, sep, key = comp.partition("/")
            if not sep:
                raise UsageError(f"'{comp}' is not DOMAIN/KEY, e.g. adapter/cache.")
            engine.known(domain, key)
        inc = incidents.open(args.title, args.severity, refs=args.component, summary=args.summary)
        if args.json:
            _print_json(inc.to_dict())
        else:
            say(f"Opened incident #{inc.id} ({inc.severity}): {inc.title}; commander {inc.commander}; "
                  f"{incidents.escalation.response_text(inc.severity)}.")
        return EXIT_OK
    if action == "list":
        rows = incidents.list(status=args.status)
        if args.from_node:
            rows = [i for i in rows if i.node == args.from_node]
        fleet = not engine.store.backend.holds_one_node  # every node's incidents: say which node each is on
        if args.json:
            _print_json({"incidents": [i.to_dict() for i in rows]})
        else:
            for i in rows:
                node = f"{one_line(i.node or '-'):<10} " if fleet else ""
                say(f"#{i.id:<4} {node}{i.severity} {i.status:<9} {_when(i.opened_at)}  {i.commander:<12} "
                    f"{one_line(i.title)}")
            if not rows:
                say("no incidents")
        return EXIT_OK
    if action == "show":
        inc = incidents.get(args.id)
        timeline = incidents.timeline(inc.id)
        if args.json:
            _print_json({**inc.to_dict(), "response": incidents.escalation.response_text(inc.severity),
                         "timeline": [e.to_dict() for e in timeline]})
            return EXIT_OK
        say(f"Incident #{inc.id} ({inc.severity}, {inc.status}): {inc.title}")
        say(f"commander {inc.commander}; opened {_when(inc.opened_at)}; "
            f"{incidents.escalation.response_text(inc.severity)}")
        say(f"components: {', '.join(inc.refs) or 'none'}; runbook: {inc.tree or 'none'}")
        if inc.resolution:
            say(f"resolution: {inc.resolution}")
        for e in timeline:
            say(f"  {_when(e.ts)} {e.kind:<10} {e.actor or '-':<12} {e.text}")
        return EXIT_OK
    if action == "note":
        incidents.note(args.id, args.text)
        say(f"Noted on incident #{args.id}.")
        return EXIT_OK
    if action == "update":
        changes = {k: v for k, v in (("severity", args.severity), ("status", args.status), ("title", args.title))
                   if v is not None}
        if not changes:
            raise UsageError("incident update needs --severity, --status or --title.")
        before = incidents.get(args.id)
        if before.status == "closed":
            raise UsageError(f"Incident #{before.id} is closed; it can no longer be changed.")
        inc = incidents.update(args.id, **changes)
        if args.json:
            _print_json(inc.to_dict())
        else:
            shown = ", ".join(f"{k} {getattr(before, k)} -> {getattr(inc, k)}" for k in changes
                              if getattr(before, k) != getattr(inc, k))
            say(f"Updated incident #{inc.id}: {shown or 'nothing changed'}"
                  + (f"; {incidents.escalation.response_text(inc.severity)}." if "severity" in changes else "."))
        return EXIT_OK
    if action == "close":
        inc = incidents.close(args.id, args.resolution, root_cause=args.root_cause, follow_ups=args.follow_up)
        say(f"Closed incident #{inc.id}: {inc.resolution}")
        return EXIT_OK
    if action == "export":
        from ..runbooks.export import handoff, postmortem

        text = handoff(incidents, args.id) if args.handoff else postmortem(incidents, args.id)
        if args.out:
            from ..runbooks.export import save

            try:
                save(args.out, text)
            except OSError as exc:
                raise OneiricError(f"Cannot write {args.out}: {exc.strerror or exc}.") from None
            say(f"Wrote {'the hand-off' if args.handoff else 'the post-mortem'} of incident #{args.id} to {args.out}.")
        else:
            sys.stdout.write(text)
        return EXIT_OK
    raise UsageError(f"unknown incident action '{action}'.")
