"""`oneiric maintenance`: the routine tasks that are due, marking one done, the history, and
maintenance windows with their notices (oneiric_core/maintenance.py)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import ExitCode, UsageError
from .output import print_json, say
from .parser import Commands


def add_parsers(commands: Commands) -> None:
    group, actions = commands.group("maintenance", "the maintenance calendar: what is due, mark a task done, "
                                    "history, maintenance windows and their notices", dest="maintenance_command",
                                    example=["oneiric maintenance", "oneiric maintenance done review-logs-metrics "
                                             "--note 'no anomalies'"])
    group.handle(cmd_maintenance)
    group.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("due", help="the tasks due or overdue (the default)",
                           example="oneiric maintenance due --json")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("list", help="every task with its cadence, last done and next due",
                           example="oneiric maintenance list")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("done", help="mark a task done (journaled); its next due date moves on",
                           example="oneiric maintenance done security-updates --note 'kernel 6.1.119 on all hosts'")
    p.add_argument("task", metavar="TASK")
    p.add_argument("--note", default="", help="what was done (journaled)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("history", help="tasks done and windows declared, oldest first",
                           example="oneiric maintenance history --json")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("window", help="declare a maintenance window (start, end, the keys it affects)",
                           example="oneiric maintenance window --start '2026-12-06 02:00' --end '2026-12-06 04:00' "
                                   "--key adapter/cache --note 'redis upgrade'")
    p.add_argument("--start", required=True, help="local time (2026-12-06 02:00) or +2h")
    p.add_argument("--end", required=True, help="local time or +3h")
    p.add_argument("--key", action="append", default=[], metavar="DOMAIN/KEY", help="a key it affects (repeatable)")
    p.add_argument("--note", default="", help="what the window is for")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("windows", help="the maintenance windows", example="oneiric maintenance windows")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("cancel", help="cancel a maintenance window", example="oneiric maintenance cancel 2")
    p.add_argument("window_id", type=int, metavar="WINDOW")
    p = actions.add_parser("notice", help="the notice before (pre) or after (post) a window, ready to paste",
                           example="oneiric maintenance notice pre --window 2")
    p.add_argument("kind", choices=("pre", "post"))
    p.add_argument("--window", type=int, help="which window (default: the open one, else the next)")


def _when(ts: float | None) -> str:
    from ..maintenance import when

    return "never" if ts is None else when(ts)


def cmd_maintenance(engine: Any, args: Any) -> int:
    from ..maintenance import Calendar, notice

    calendar = Calendar(engine)
    action = args.maintenance_command or "due"
    now = time.time()
    if action in ("due", "list"):
        states = calendar.states(now) if action == "list" else calendar.due(now)
        if args.json:
            print_json({"tasks": [s.to_dict(now) for s in states], "file": str(calendar.file)})
            return ExitCode.OK
        if not states:
            say("No maintenance task is due.")
        for s in states:
            runbook = f"  (walk: oneiric runbook walk {s.task.runbook})" if s.task.runbook else ""
            say(f"{s.status(now).upper():<8} {s.task.id:<28} {s.task.every:<10} last {_when(s.last_done_at)}"
                f"{' by ' + s.last_done_by if s.last_done_by else ''}; due {_when(s.due_at)}{runbook}")
        return ExitCode.OK
    if action == "done":
        state = calendar.mark_done(args.task, actor=engine.actor, note=args.note)
        if args.json:
            print_json(state.to_dict(now))
        else:
            say(f"Marked {state.task.id} ({state.task.title}) done by {engine.actor}; next due {_when(state.due_at)}.")
        return ExitCode.OK
    if action == "history":
        events = calendar.history()
        if args.json:
            print_json({"events": [e.to_dict() for e in events]})
        else:
            for e in events:
                say(f"{_when(e.ts)}  {e.message}")
            if not events:
                say("Nothing has been recorded yet.")
        return ExitCode.OK
    if action == "window":
        from ..maintenance import parse_time

        window = calendar.declare(parse_time(args.start), parse_time(args.end), args.key, actor=engine.actor,
                                  note=args.note)
        if args.json:
            print_json(window.to_dict(now))
        else:
            say(f"Declared maintenance window #{window.id}: {_when(window.start)} to {_when(window.end)}"
                + (f" for {', '.join(window.keys)}" if window.keys else "") + f" (notices: oneiric maintenance notice "
                f"pre --window {window.id}).")
        return ExitCode.OK
    if action == "windows":
        windows = calendar.windows()
        if args.json:
            print_json({"windows": [w.to_dict(now) for w in windows]})
        else:
            for w in windows:
                say(f"#{w.id} {w.state(now):<9} {_when(w.start)} to {_when(w.end)} "
                    f"{', '.join(w.keys) or '(no key)'} {w.note}")
            if not windows:
                say("No maintenance window is declared.")
        return ExitCode.OK
    if action == "cancel":
        window = calendar.cancel(args.window_id, actor=engine.actor)
        say(f"Cancelled maintenance window #{window.id}.")
        return ExitCode.OK
    if action == "notice":
        shown = calendar.window(args.window, now)
        if shown is None:
            raise UsageError("No maintenance window is open or coming: declare one with 'oneiric maintenance window'.")
        window = shown
        roles = engine.settings.app.escalation.roles
        on_call = roles.get("on_call_engineer")
        contacts = ", ".join(p for p in (on_call.name, on_call.chat or on_call.email) if p) if on_call else ""
        say(notice(window, args.kind, contacts=contacts))
        return ExitCode.OK
    raise UsageError(f"maintenance has no action '{action}' (see 'oneiric maintenance --help').")
