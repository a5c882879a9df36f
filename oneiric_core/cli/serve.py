"""The two long-running commands: `console` (the Textual console, which hosts the state
directory unless another process does) and `run` (the headless host, for systemd)."""

from __future__ import annotations

import os
from typing import Any

from .parser import Commands


def add_console(commands: Commands) -> None:
    p = commands.add("console", "the operations console (Textual); hosts the state dir unless another process does",
                     run=cmd_console, needs_engine=False, json_flag=False,
                     example=["oneiric console", "oneiric --settings /etc/oneiric console --theme ansi-dark"])
    p.add_argument("--theme", help="a Textual theme, e.g. ansi-dark (default: $TEXTUAL_THEME or textual-dark)")


def add_run(commands: Commands) -> None:
    p = commands.add("run", "the headless host (for systemd): hosts the state dir until SIGTERM, SIGINT or SIGHUP, "
                     "printing every journal event as a JSON line", run=cmd_run, needs_engine=False,
                     json_flag=False, example="oneiric --settings /etc/oneiric run --stop-timeout 20")
    p.add_argument("--stop-timeout", type=float, default=None, metavar="SECONDS",
                   help="on a signal: how long running commands get to finish, then how long providers "
                   "get to stop (default: lifecycle.cleanup_timeout in app.yml)")


def cmd_run(args: Any) -> int:
    from ..host import run_host

    return run_host(args.settings, state_dir=args.state_dir, read_only=args.read_only or None,
                    stop_timeout=args.stop_timeout)


def cmd_console(args: Any) -> int:
    """Start the console. The CLI is the one part of oneiric_core that may import the UI, and
    only here, when the console is what was asked for (pyproject.toml's import-linter
    contracts say so); Textual is never loaded for any other command."""
    if args.theme:
        os.environ["TEXTUAL_THEME"] = args.theme
    from oneiric_tui.app import run_console

    return int(run_console(args.settings, state_dir=args.state_dir, read_only=args.read_only))
