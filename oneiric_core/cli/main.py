"""The `oneiric` entry point: parse, run the command's handler, turn every error into one
sentence on stderr and an exit code (errors.ExitCode), never a traceback unless `--debug`.

Commands that read or change the component runtime get an Engine over the settings (built
here, closed after); a change whose host is found before any settings are loaded goes
straight to its socket (acting.via_host_quick). With no host running, commands compute from
settings and the store.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ExitCode, OneiricError, UsageError
from . import (
    acting,
    approvals,
    completion,
    components,
    config,
    contexts,
    doctor,
    fleet,
    init,
    journal,
    maintenance,
    remote,
    rollout,
    runbook,
    serve,
    supervisor,
)
from .init import VersionAction
from .output import say
from .parser import Commands, Handler, Parser, SubParsers, settle_key, viewed_node

COMPLETE_WORD = "__complete"  # `oneiric __complete WORDS...`: what the shell completion scripts call


def build_parser() -> Parser:
    root = Parser(prog="oneiric", description="Oneiric Console: operate Oneiric component runtimes.",
                  example=["oneiric console", "oneiric status --key cache", "oneiric status --help"], root=True)
    root.add_argument("--version", action=VersionAction, help="print the version and exit")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, action=SubParsers)
    commands = Commands(sub)
    serve.add_console(commands)
    components.add_parsers(commands)
    acting.add_parsers(commands)
    approvals.add_parsers(commands)
    serve.add_run(commands)
    journal.add_parsers(commands)
    remote.add_parsers(commands)
    fleet.add_parsers(commands)
    contexts.add_parsers(commands)
    rollout.add_parsers(commands)
    acting.add_remote_sync(commands)
    runbook.add_parsers(sub)
    init.add_parsers(commands)
    config.add_parsers(commands)
    doctor.add_parsers(commands)
    maintenance.add_parsers(commands)
    supervisor.add_parsers(commands)
    completion.add_parsers(commands)
    return root


def run(argv: Sequence[str]) -> int:
    if argv[:1] == [COMPLETE_WORD]:
        return completion.print_candidates(build_parser, list(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return ExitCode.USAGE
    if getattr(args, "context", None):
        from ..contexts import apply as use_context
        from ..contexts import load as load_contexts

        use_context(load_contexts().get(args.context), args)
    settle_key(args)
    if getattr(args, "resume_instead", False):  # upstream's `pause KEY --resume`, `drain KEY --clear`
        args.command = "resume"
    if not handler.needs_engine:
        return handler.run(args)
    if (code := acting.via_host_quick(args)) is not None:
        return code
    from ..engine import Engine

    view = viewed_node(args)  # `status web-2:cache`: node web-2's view, from the store
    engine = Engine(args.settings, state_dir=args.state_dir, read_only=args.read_only or None,
                    node=view or args.node)
    try:
        if view is not None:
            _require_fleet(engine, view, args)
        return handler.run(engine, args)
    finally:
        engine.close()


def _require_fleet(engine: Any, view: str, args: Any) -> None:
    """A SQLite file is one node's: another node's view of it would be this one's, mislabelled."""
    from ..store.scope import default_node

    if engine.store.backend.holds_one_node and view != (args.node or default_node()):
        raise UsageError(f"The store {engine.store.where} is one node's (a SQLite file): there is no node {view} "
                         "to show; a fleet shares a PostgreSQL store (docs/fleet.md).")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        code = run(argv)
    except OneiricError as exc:
        if debug:
            raise
        say(f"oneiric: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        code = ExitCode.OK
    except Exception as exc:  # the last line of defence: one sentence, no traceback
        if debug:
            raise
        say(f"oneiric: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details).", err=True)
        code = ExitCode.ERROR
    return int(code)
