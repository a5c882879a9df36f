"""`oneiric rollout`: a rolling swap of one key over a fleet's nodes (rollout.py has the rules;
the hosts carry it out, so the process that starts it may go away). `start` (the default)
writes it, `approve`/`reject` decide it (once, for every node), `status` shows one or the
recent ones, `watch` follows one live until it ends."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, NotFound, UsageError
from ..rollout import RolloutOptions, decide_rollout, describe_plan, parse_duration, progress_line, start_rollout
from ..store import RolloutRecord
from .output import print_json, say
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine

ACTIONS = ("start", "approve", "reject", "status", "watch")
EXIT_HALTED = ExitCode.SWAP_REFUSED  # halted: a node's swap failed or rolled back, or a node went quiet


def add_parsers(commands: Commands) -> None:
    p = commands.add("rollout", "a rolling swap of one key over the fleet's nodes: the canary first, then batch by "
                     "batch with a health soak after each, halted and swapped back at the first failure",
                     run=cmd_rollout, example=[
                         "oneiric rollout --key adapter/cache --provider redis --canary 1 --batch 50% --soak 30s",
                         "oneiric rollout approve 3", "oneiric rollout status 3 --json"])
    p.add_argument("action", nargs="?", default="start", choices=ACTIONS, help="start (the default), approve, "
                   "reject, status or watch")
    p.add_argument("id", nargs="?", type=int, help="the rollout (approve, reject, status, watch)")
    p.add_argument("--key", metavar="DOMAIN/KEY", help="start: the key to swap, e.g. adapter/cache")
    p.add_argument("--provider", help="start: the provider every node swaps to")
    p.add_argument("--nodes", metavar="SELECTOR", help="start: which nodes, as shell patterns (web-*,db-1; default "
                   "every live node)")
    p.add_argument("--canary", type=int, default=1, metavar="N", help="start: nodes in the first batch (default 1)")
    p.add_argument("--batch", default="1", metavar="N|P%", help="start: nodes per later batch (default 1)")
    p.add_argument("--soak", default="30s", metavar="DURATION", help="start: how long each batch must stay live "
                   "and healthy before the next (default 30s)")
    p.add_argument("--max-unhealthy", type=int, default=0, metavar="N", help="start: unhealthy nodes a batch may "
                   "end its soak with (default 0)")
    p.add_argument("--no-rollback", action="store_true", help="start: on a halt, leave the nodes done so far")
    p.add_argument("--reason", default="", help="start: why (shown with every node's swap)")
    p.add_argument("--no-wait", action="store_true", help="do not follow it: print and exit (the hosts carry it on)")


def cmd_rollout(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "start":
        if args.id is not None:
            raise UsageError("rollout start takes --key and --provider, not an id.")
        return _start(engine, args)
    if args.id is None:
        if args.action == "status":
            return _list(engine, args)
        raise UsageError(f"rollout {args.action} needs the rollout's id: 'oneiric rollout {args.action} ID'.")
    rollout = _get(engine, args.id)
    if args.action in ("approve", "reject"):
        return _decide(engine, args, rollout)
    if args.action == "status":
        if args.json:
            print_json(rollout_json(rollout))
        else:
            _print(rollout)
        return _exit(rollout)
    return watch(engine, rollout.id)


def _get(engine: Engine, rollout_id: int) -> RolloutRecord:
    rollout = engine.store.rollouts.get(rollout_id)
    if rollout is None:
        raise NotFound(f"No rollout #{rollout_id} exists ('oneiric rollout status' lists them).")
    return rollout


def _start(engine: Engine, args: argparse.Namespace) -> int:
    if not args.key or not args.provider:
        raise UsageError("rollout needs --key DOMAIN/KEY and --provider P (see 'oneiric rollout --help').")
    options = RolloutOptions(args.canary, args.batch, parse_duration(args.soak), args.max_unhealthy,
                             not args.no_rollback)
    rollout = start_rollout(engine, args.key, args.provider, options, nodes=args.nodes, reason=args.reason)
    if args.json and args.no_wait:
        print_json(rollout_json(rollout))
        return 0
    say(describe_plan(rollout))
    if rollout.status == "pending":
        rule = " by another operator (two-person rule)" if engine.settings.app.approvals.two_person else ""
        say(f"It waits for its one approval{rule}: 'oneiric rollout approve {rollout.id}'.")
        return 0
    if args.no_wait:
        say(f"The hosts carry it out; follow it with 'oneiric rollout watch {rollout.id}'.")
        return 0
    return watch(engine, rollout.id)


def _decide(engine: Engine, args: argparse.Namespace, rollout: RolloutRecord) -> int:
    verdict = "approved" if args.action == "approve" else "rejected"
    say(decide_rollout(engine, rollout.id, verdict))
    if verdict == "rejected" or args.no_wait:
        return 0
    return watch(engine, rollout.id)


def _list(engine: Engine, args: argparse.Namespace) -> int:
    recent = engine.store.rollouts.recent()
    if args.json:
        print_json({"rollouts": [rollout_json(r) for r in recent]})
        return 0
    if not recent:
        say("No rollout yet ('oneiric rollout --key D/K --provider P' starts one).")
    for r in recent:
        say(progress_line(r))
    return 0


def rollout_json(r: RolloutRecord) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _print(r: RolloutRecord) -> None:
    say(progress_line(r))
    for step in r.steps:
        note = f"  {step.message}" if step.message else ""
        say(f"  batch {step.batch + 1}  {step.node:<16} {step.status:<15} from {step.from_provider or '-'}{note}")


def _exit(r: RolloutRecord) -> int:
    return EXIT_HALTED if r.status == "halted" else 0


def watch(engine: Engine, rollout_id: int) -> int:
    """Follow a rollout until it ends: a Rich progress display on a terminal, a line per change
    otherwise; exit 0 when done, 5 when halted. Leaving it (ctrl+c) leaves the rollout running."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    listener = engine.store.listen()
    try:
        rollout = _get(engine, rollout_id)
        if not sys.stdout.isatty():
            seen = ""
            while True:
                line = progress_line(rollout)
                if line != seen:
                    say(line, flush=True)
                    seen = line
                if rollout.finished:
                    break
                listener.wait(1.0)
                rollout = _get(engine, rollout_id)
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn()) as progress:
                task = progress.add_task("", total=len(rollout.steps))
                while True:
                    done = sum(1 for s in rollout.steps if s.status == "done")
                    progress.update(task, completed=done, description=progress_line(rollout))
                    if rollout.finished:
                        break
                    listener.wait(1.0)
                    rollout = _get(engine, rollout_id)
        _print(rollout)
        return _exit(rollout)
    finally:
        listener.close()
