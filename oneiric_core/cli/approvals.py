"""`oneiric approvals`: the pending swap proposals and the recently decided ones (approving
and rejecting are actions: acting.py)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..errors import ExitCode
from ..humanize import age
from .output import ago, console, new_table, print_json
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine


def add_parsers(commands: Commands) -> None:
    p = commands.add("approvals", "pending and recent swap proposals", run=cmd_approvals,
                     example=["oneiric approvals", "oneiric approvals --limit 5 --json"])
    p.add_argument("--limit", type=int, default=20, help="how many decided proposals to show (default 20)")


def cmd_approvals(engine: Engine, args: argparse.Namespace) -> int:
    from ..commands import proposal_json

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
