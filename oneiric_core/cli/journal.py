"""`oneiric journal`: the event journal, filtered or followed, and `journal verify`."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, UsageError
from ..text import one_line
from .components import filter_refs
from .output import console, json_text, new_table, print_json, say
from .parser import Commands

if TYPE_CHECKING:
    from ..engine import Engine
    from ..events import Event


def add_parsers(commands: Commands) -> None:
    p = commands.add("journal", "the event journal, oldest first; 'journal verify' checks its hash chain",
                     run=cmd_journal, ref="optional",
                     example=["oneiric journal --key cache --limit 20", "oneiric journal --kind swap-rollback --follow",
                              "oneiric journal verify"])
    p.add_argument("action", nargs="?", choices=("verify",), metavar="verify",
                   help="verify: walk the hash chain and name the first edited, deleted, inserted or "
                   "reordered row, or a truncation (exit 0 intact, 1 tampered)")
    p.add_argument("--limit", type=int, default=50, help="how many events (default 50)")
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--grep", help="only events whose text contains this")
    p.add_argument("--follow", action="store_true", help="keep printing new events")
    p.add_argument("--from", dest="from_node", metavar="NODE", help="only the events node NODE's processes wrote "
                   "(a fleet store's journal is every node's)")


def _event_row(e: Event, fleet: bool = False) -> list[str]:
    symbol = {"info": "i", "warning": "!", "error": "x"}[e.severity.value]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
    return [stamp, symbol, *([e.node or "-"] if fleet else []), e.kind, e.ref_text or "-", e.actor or "-", e.message]


def cmd_journal_verify(engine: Engine, args: argparse.Namespace) -> int:
    from ..journal_chain import verify

    if args.follow or args.kind or args.grep or args.key or args.domain or args.from_node:
        raise UsageError("journal verify checks the whole chain: it takes no filter and no --follow.")
    verdict = verify(engine.store)
    if args.json:
        print_json(verdict.to_dict())
    else:
        say(verdict.sentence())
    return ExitCode.OK if verdict.intact else ExitCode.ERROR


def cmd_journal(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "verify":
        return cmd_journal_verify(engine, args)
    filters: dict[str, Any] = {"kinds": args.kind, "text": args.grep, "node": args.from_node}
    fleet = not engine.store.backend.holds_one_node
    if args.key or args.domain:
        refs = filter_refs(engine, args.domain, args.key)
        if args.key:
            filters.update(domain=refs[0].domain.value, key=refs[0].key)
        else:
            from ..domains import Domain

            filters["domain"] = Domain.parse(args.domain).value
    events = engine.journal(limit=args.limit, **filters)
    if args.json and not args.follow:
        print_json({"events": [e.to_dict() for e in events]})
        return ExitCode.OK
    emit: Callable[[Any], None]
    if args.json:
        emit = lambda e: say(json_text(e.to_dict()), flush=True)  # noqa: E731
    else:
        emit = lambda e: say("  ".join(one_line(cell) for cell in _event_row(e, fleet)), flush=True)  # noqa: E731
    if not args.follow:
        table = new_table("TIME", "", *(["NODE"] if fleet else []), "KIND", "COMPONENT", "ACTOR", "MESSAGE")
        for e in events:
            table.add_row(*_event_row(e, fleet))
        console().print(table)
        return ExitCode.OK
    for e in events:
        emit(e)
    last = events[-1].id if events else engine.store.last_journal_id()
    listener = engine.store.listen()  # wakes at each commit (PostgreSQL: NOTIFY); a read every 5 s anyway
    try:
        while True:
            listener.wait(5.0)
            for e in engine.journal(limit=1000, after_id=last, **filters):
                emit(e)
                last = e.id
    finally:
        listener.close()
