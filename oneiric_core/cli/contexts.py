"""`oneiric ctx [NAME]`: the contexts of the contexts file (oneiric_core/contexts.py), the
current one marked; with NAME, that one becomes current (what `:ctx` in the console lists)."""

from __future__ import annotations

import argparse

from .. import contexts
from .output import print_json, say
from .parser import Commands


def add_parsers(commands: Commands) -> None:
    p = commands.add("ctx", "the contexts of the contexts file (settings, state, store, node) and the current one; "
                     "NAME makes that one current (use one with --context NAME)", run=cmd_ctx, needs_engine=False,
                     example=["oneiric ctx", "oneiric ctx prod", "oneiric --context prod nodes"])
    p.add_argument("name", nargs="?", help="the context to make current")


def cmd_ctx(args: argparse.Namespace) -> int:
    found = contexts.load()
    if args.name:
        chosen = found.use(args.name)
        say(f"Current context: {chosen.describe()}.")
        return 0
    if args.json:
        print_json({"file": str(found.path), "current": found.current,
                    "contexts": [{"name": c.name, "settings": c.settings, "state_dir": c.state_dir,
                                  "store": c.store_url.split("@")[-1] if c.store_url else None, "node": c.node}
                                 for c in found.by_name.values()]})
        return 0
    if not found.by_name:
        say(f"No contexts yet: write them in {found.path} (docs/fleet.md shows how).")
        return 0
    for context in found.by_name.values():
        say(("* " if context.name == found.current else "  ") + context.describe())
    return 0
