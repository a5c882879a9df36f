"""How `oneiric` reads its command line: the root parser, the global options, and the
`Commands` each command group module adds its commands through.

Two conventions hold for every command, because operators type them from habit:

* **Global options go anywhere.** `oneiric --settings X status` and `oneiric status
  --settings X` mean the same. The root parser holds each global option with its real
  default; every other parser holds it too, with no default (argparse.SUPPRESS), so a value
  given after the command lands on the same attribute and one not given leaves the root's.
* **Every command's help ends with an example** (`Commands.add(..., example=...)`);
  tests/test_cli_package.py checks that none lacks one.

The group modules (components, acting, journal, approvals, serve, config, init, remote,
runbook, completion) each have `add_parsers(commands)`; main.build_parser calls them in the
order `oneiric --help` lists them. A command's parser carries its `Handler`, which main.py
runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

from ..errors import UsageError

WAIT_S = 30.0  # how long a command waits for a running host's answer (--wait)
SETTINGS_ENV = "ONEIRIC_SETTINGS"


class Handler(NamedTuple):
    """What runs a parsed command: `run(engine, args)` with an engine over the settings
    (`needs_engine`), else `run(args)` (commands that run before or without settings). A
    NamedTuple, not a dataclass: `dataclasses` costs `--help` 7 ms to import."""

    run: Callable[..., int]
    needs_engine: bool = True


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one sentence (exit 2), ends its help with
    examples, and accepts the global options wherever it sits in the tree."""

    def __init__(self, *args: Any, example: str | Sequence[str] | None = None, root: bool = False,
                 **kwargs: Any) -> None:
        examples = [example] if isinstance(example, str) else list(example or ())
        if examples:
            kwargs["epilog"] = "example" + ("s" if len(examples) > 1 else "") + ":\n" + \
                "\n".join(f"  {line}" for line in examples)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.examples = examples
        _add_global_options(self, root=root)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help').")

    def handle(self, run: Callable[..., int], *, needs_engine: bool = True) -> Parser:
        self.set_defaults(handler=Handler(run, needs_engine))
        return self


class SubParsers(argparse._SubParsersAction):
    """Subcommands whose `add_parser(help=...)` also becomes the subparser's description."""

    def add_parser(self, name: str, **kwargs: Any) -> Parser:
        text = kwargs.get("help")
        parser = super().add_parser(name, **kwargs)
        if text and not parser.description:
            parser.description = text
        return parser


def _add_global_options(parser: argparse.ArgumentParser, *, root: bool) -> None:
    """--settings, --state-dir, --context, --node, --read-only, --debug: with their defaults on the root, with
    none (SUPPRESS) everywhere else, so a value given after the command is the one used."""

    def default(value: Any) -> Any:
        return value if root else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--settings", default=default(os.environ.get(SETTINGS_ENV, "settings")),
                       help=f"settings directory (default: ./settings or ${SETTINGS_ENV})")
    group.add_argument("--state-dir", default=default(None),
                       help="state directory (default: from app.yml, else .oneiric beside the settings)")
    group.add_argument("--context", default=default(None), metavar="NAME",
                       help="a context of the contexts file: its settings, state, store and node (oneiric ctx)")
    group.add_argument("--node", default=default(None), metavar="NAME",
                       help="the node this process is (default: the hostname); a fleet store tells hosts apart by it")
    group.add_argument("--read-only", action="store_true", default=default(False), help="refuse every change")
    group.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")


class Commands:
    """The `oneiric COMMAND` level of the parser, as the group modules fill it."""

    def __init__(self, sub: argparse._SubParsersAction) -> None:
        self.sub = sub

    def add(self, name: str, help_text: str, *, run: Callable[..., int], example: str | Sequence[str],
            needs_engine: bool = True, json_flag: bool = True, ref: str | None = None,
            positional_key: bool = False) -> Parser:
        """A command: `ref` "optional" or "required" adds --domain and --key (`settle_key`
        requires one when "required"); `positional_key` also takes the key as a word after the
        command, as upstream Oneiric's CLI and runbooks write it (`oneiric explain cache`);
        `json_flag` adds --json."""
        p: Parser = self.sub.add_parser(name, help=help_text, example=example)
        if positional_key:
            p.add_argument("key_arg", nargs="?", metavar="KEY", help="the component key (the same as --key)")
        if ref:
            p.add_argument("--domain", help="adapter, service, task, event, workflow or action")
            p.add_argument("--key", help="the component key, e.g. cache")
            p.set_defaults(key_needed=(ref == "required"))
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON (shapes in the README)")
        return p.handle(run, needs_engine=needs_engine)

    def group(self, name: str, help_text: str, *, dest: str, example: str | Sequence[str]) -> tuple[Parser, Any]:
        """A command with actions of its own (`oneiric config validate`): its parser and the
        subparsers its actions are added to."""
        p: Parser = self.sub.add_parser(name, help=help_text, example=example)
        return p, p.add_subparsers(dest=dest, metavar="ACTION", parser_class=Parser, action=SubParsers)


# The commands that act on another node of a fleet store: `oneiric pause web-2:cache`.
NODE_COMMANDS = frozenset({"pause", "resume", "drain", "swap", "health"})
# The read commands that show another node of a fleet store from the store (that node's
# snapshots, activity and lease), as `oneiric --node web-2 status` does: `oneiric status web-2:cache`.
NODE_READ_COMMANDS = frozenset({"status", "explain", "health"})


def settle_key(args: argparse.Namespace) -> None:
    """The key from the word after the command or from --key (never two different ones), and
    required where the command needs one: one sentence when it is missing. `NODE:KEY` names
    another node of a fleet store (args.target_node)."""
    positional = getattr(args, "key_arg", None)
    if positional is not None:
        if args.key and args.key != positional:
            raise UsageError(f"The key is given twice, as '{positional}' and as --key '{args.key}'; give it once.")
        args.key = positional
    args.target_node = None
    # (only a component key: `key_needed` is set where --key names one; `manifest sign --key` is a file)
    if hasattr(args, "key_needed") and isinstance(args.key, str) and ":" in args.key:
        from ..store.scope import node_name

        node, _, key = args.key.partition(":")
        args.target_node, args.key = node_name(node), key
        if args.command not in NODE_COMMANDS | NODE_READ_COMMANDS:
            raise UsageError(f"{args.command} takes no NODE: before the key yet; "
                             f"{', '.join(sorted(NODE_COMMANDS | NODE_READ_COMMANDS))} do (docs/fleet.md).")
    if getattr(args, "key_needed", False) and not args.key:
        raise UsageError(f"{args.command} needs a key: 'oneiric {args.command} KEY' or --key KEY "
                         f"(see 'oneiric {args.command} --help').")


def viewed_node(args: argparse.Namespace) -> str | None:
    """The node whose view a read command builds its engine as (`status web-2:cache`: node
    web-2, read from the store as `--node web-2` reads it), or None for this process's own.
    `health --probe` is an action: it stays this process's node and sends the probe."""
    node = getattr(args, "target_node", None)
    if node is None or args.command not in NODE_READ_COMMANDS or getattr(args, "probe", False):
        return None
    return str(node)


def waits(p: argparse.ArgumentParser) -> None:
    """--wait, for the commands a running host answers."""
    p.add_argument("--wait", type=float, default=WAIT_S, metavar="SECONDS",
                   help=f"with a host running: how long to wait for its answer (default {WAIT_S:g})")


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Parser]]:
    """Every command's parser with its words (`("incident", "close")`), depth first: for
    completion and for the test that every command has an example."""
    out: list[tuple[tuple[str, ...], Parser]] = []
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs and isinstance(parser, Parser):
        return [(path, parser)]
    for action in subs:
        for name, child in action.choices.items():
            out.extend(leaf_parsers(child, (*path, name)))
    return out
