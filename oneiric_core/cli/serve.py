"""The two long-running commands: `console` (the Textual console, which hosts the state
directory unless another process does) and `run` (the headless host, for systemd)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import UsageError
from .output import say
from .parser import Commands


def add_console(commands: Commands) -> None:
    p = commands.add("console", "the operations console (Textual); hosts the state dir unless another process does",
                     run=cmd_console, needs_engine=False, json_flag=False,
                     example=["oneiric console", "oneiric --settings /etc/oneiric console --theme ansi-dark",
                              "oneiric console --web --bind 127.0.0.1:8080"])
    p.add_argument("--theme", help="a Textual theme, e.g. ansi-dark (default: $TEXTUAL_THEME or textual-dark)")
    p.add_argument("--web", action="store_true", help="serve the console to browsers instead (docs/web.md): "
                   "prints one URL with an access token; every tab is a client of this state dir's one host")
    p.add_argument("--bind", metavar="HOST:PORT", help="with --web: where to listen (default 127.0.0.1 on a free "
                   "port); only an address named here, e.g. 0.0.0.0:8080, is reachable from other machines")
    p.add_argument("--web-operate", action="store_true", help="with --web: web sessions may act (default: read-only)")


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
                    stop_timeout=args.stop_timeout, node=args.node)


def game_day_console(settings_dir: Any, tree_id: str, drill_id: str) -> int:
    """`runbook drill ID --interactive --console`: the game day walked in the console (exit 0
    when the walk reached the exit the drill expects, 1 when not or when it was not finished)."""
    from oneiric_tui.game_day import run_game_day

    day = run_game_day(settings_dir, tree_id, drill_id)
    say(day.intro())
    if day.scored is None:
        say("The walk did not finish before the console was quit: no score.")
        return 1
    say(day.scored[1])
    return 0 if day.scored[0] else 1


def cmd_console(args: Any) -> int:
    """Start the console. The CLI is the one part of oneiric_core that may import the UI, and
    only here, when the console is what was asked for (pyproject.toml's import-linter
    contracts say so); Textual is never loaded for any other command."""
    if args.theme:
        from oneiric_tui.themes import theme_refusal

        refusal = theme_refusal(args.theme)
        if refusal:
            raise UsageError(refusal)
        os.environ["TEXTUAL_THEME"] = args.theme
    if args.web or args.bind or args.web_operate:
        if not args.web:
            raise UsageError("--bind and --web-operate go with --web (see 'oneiric console --help').")
        from oneiric_tui.web_serve import serve

        return serve(args.settings, state_dir=args.state_dir, bind=args.bind, operate=args.web_operate,
                     read_only=args.read_only)
    from oneiric_tui.app import run_console

    return int(run_console(args.settings, state_dir=args.state_dir, read_only=args.read_only, node=args.node))
