"""`oneiric approvals`: the pending swap proposals and the recently decided ones (approving
and rejecting are actions: acting.py)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from ..humanize import age
from .output import ago, console, new_table, print_json
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine


def add_parsers(commands: Commands) -> None:
    p = commands.add("approvals", "pending and recent swap proposals", run=cmd_approvals,
                     example=["oneiric approvals", "oneiric approvals --limit 5 --json"])
    p.add_argument("--limit", type=int, default=20, help="how many decided proposals to show (default 20)")
    p.add_argument("--fleet", action="store_true", help="every node's proposals, with a NODE column (a fleet "
                   "store; each is decided by its own node's host)")


def cmd_approvals(engine: Engine, args: argparse.Namespace) -> int:
    from ..commands import proposal_json

    if args.fleet:
        return _fleet(engine, args)
    pending = engine.pending_proposals()  # with no host, retires (and journals) the expired ones first
    decided = [p for p in engine.approvals.recent(200) if p.status != "pending"][-max(args.limit, 0):]
    if args.json:
        print_json({"pending": [proposal_json(p) for p in pending],
                     "recent": [proposal_json(p) for p in decided]})
        return ExitCode.OK
    out = console()
    policy = engine.approvals
    out.print(f"policy: mode {policy.mode}, two-person rule {'on' if policy.two_person else 'off'}, "
              f"proposals expire after {policy.expire_after_s:g}s", markup=False)
    if pending:
        table = new_table("ID", "COMPONENT", "FROM -> TO", "BY", "ASKED", "EXPIRES", "REASON")
        for p in pending:
            now = time.time()
            expires = f"in {age(now, now=p.expires_at)}" if p.expires_at else "never"
            table.add_row(str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> {p.to_provider}"
                          + (" (force)" if p.force else ""), p.requested_by, ago(p.created_at), expires,
                          p.reason or f"from {p.source}")
        out.print(table)
    else:
        out.print("No proposal waits for approval.")
    if decided:
        table = new_table("ID", "COMPONENT", "FROM -> TO", "STATUS", "DECIDED BY", "OUTCOME")
        for p in decided:
            table.add_row(str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> {p.to_provider}",
                          p.status.upper(), p.decided_by or "-", p.outcome_reason or p.comment or "")
        out.print(table)
    return ExitCode.OK


def _fleet(engine: Engine, args: argparse.Namespace) -> int:
    """Every node's pending proposals and its recent decisions, by node."""
    from ..commands import proposal_json

    if engine.store.backend.holds_one_node:
        raise UsageError(f"--fleet lists a fleet store's nodes; {engine.store.where} is one node's (a SQLite file).")
    every = engine.store.proposals(limit=max(args.limit, 0) + 1000, fleet=True)
    pending = [p for p in every if p.status == "pending"]
    decided = [p for p in every if p.status != "pending"][-max(args.limit, 0):]
    if args.json:
        print_json({"pending": [proposal_json(p) for p in pending], "recent": [proposal_json(p) for p in decided]})
        return ExitCode.OK
    out = console()
    if pending:
        table = new_table("NODE", "ID", "COMPONENT", "FROM -> TO", "BY", "ASKED", "REASON")
        for p in pending:
            table.add_row(p.node or "-", str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> "
                          f"{p.to_provider}", p.requested_by, ago(p.created_at), p.reason or f"from {p.source}")
        out.print(table)
    else:
        out.print("No proposal waits for approval on any node.")
    if decided:
        table = new_table("NODE", "ID", "COMPONENT", "FROM -> TO", "STATUS", "DECIDED BY")
        for p in decided:
            table.add_row(p.node or "-", str(p.id), f"{p.domain}/{p.key}", f"{p.from_provider or '-'} -> "
                          f"{p.to_provider}", p.status.upper(), p.decided_by or "-")
        out.print(table)
    return ExitCode.OK
