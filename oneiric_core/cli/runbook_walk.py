"""`oneiric runbook walk` and `oneiric runbook drill`: the walker and the drills in a plain terminal.

The walk is the console's walk (walker.py) driven by drive.py: checks run by themselves and
print their verdict and evidence; a question or an action is asked on a terminal with numbered
choices (the safe one first), or answered by `--answer`. With stdin not a terminal, a node
without an answer ends the command with one sentence naming the node and its choices (exit 2,
the usage-error code). Walking opens no incident and saves no walk: it is a look, and the
actions it performs go through the engine's own paths (a swap is a proposal) like the console's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ExitCode
from ..runbooks.drive import Answers, WalkEnd, drive, match_choice, path_of, where
from ..runbooks.walker import Step, Walker
from .output import json_text, say

EXIT_OK, EXIT_ERROR = ExitCode.OK, ExitCode.ERROR

if TYPE_CHECKING:
    from ..engine import Engine
    from ..runbooks.actions import ActionOutcome
    from ..runbooks.loader import Catalog
    from ..runbooks.model import Drill, Tree


class TerminalPrompter:
    """Asks on the terminal: numbered choices, the safe one first; an empty line asks again,
    end of input (ctrl-d) ends the walk where it is."""

    def __init__(self, out: TextIO, inp: TextIO) -> None:
        self.out, self.inp = out, inp

    def _read(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        line = self.inp.readline()
        if not line:
            self.out.write("\n")
            return None
        return line.strip()

    def choose(self, walker: Walker, choices: list[str]) -> str | None:
        from ..errors import UsageError

        view = walker.view()
        node = walker.node
        lines = [f"\n[{walker.tree.id}:{node.id}] {node.kind}: {view['text']}"]
        if view.get("where"):
            lines.append(f"  where to look: {view['where']}")
        if node.kind == "action" and "action" in view:
            lines.append(f"  this step {view['action']['changes']}")
        labels = {"stop": "stop here (change nothing)", "perform": "perform this step"} if node.kind == "action" else {}
        lines += [f"  {n}) {labels.get(c, c)}" for n, c in enumerate(choices, 1)]
        self.out.write("\n".join(lines) + "\n")
        while True:
            given = self._read(f"choice [1-{len(choices)}]: ")
            if given is None:
                return None
            if not given:
                continue  # an empty Enter never picks for the operator
            try:
                return match_choice(choices, given, where(walker))
            except UsageError as exc:
                self.out.write(f"{exc}\n")

    def param(self, walker: Walker, name: str) -> str | None:
        """The values the engine knows, numbered; a number picks one, anything else is the
        value as typed (a key that does not exist is a fine answer)."""
        from ..runbooks.param_choices import param_choices

        asked = param_choices(walker.engine, walker.params, name)
        values = [c.value for c in asked.choices]
        lines = [f"\n{walker.tree.id}:{walker.node.id} needs the {name}: {asked.title}"]
        lines += [f"  {n}) {c.label}" for n, c in enumerate(asked.choices, 1)]
        if values:
            lines.append(f"  or type another ({asked.hint})")
        self.out.write("\n".join(lines) + "\n")
        prompt = f"{name} [1-{len(values)} or a value]: " if values else f"{name} ({asked.hint}): "
        while True:
            given = self._read(prompt)
            if given is None:
                return None
            if given.isdigit() and 1 <= int(given) <= len(values):
                return values[int(given) - 1]
            if given:
                return given  # an empty Enter asks again


def _print_step(step: Step) -> None:
    mark = {"check": "check", "question": "answer", "action": "action", "escalate": "escalate",
            "done": "done"}.get(step.kind, step.kind)
    say(f"[{step.tree}:{step.node}] {mark}: {step.text}")
    if step.kind == "check":
        say(f"  -> {step.value}")
    elif step.kind in ("question", "action"):
        say(f"  -> {step.value}" + (f" (proposal #{step.proposal_id})" if step.proposal_id else ""))
    for line in step.evidence:
        say(f"     {line}")


def _params(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """--domain/--key as the runbooks write them; `--key cache` alone when one domain has it. A
    key that does not exist is kept as given (finding out why is what component-not-found is for)."""
    from ..errors import NotFound, UsageError

    params = {name: getattr(args, name) for name in ("domain", "key", "source", "target") if getattr(args, name)}
    if args.key:
        try:
            ref = engine.find_ref(args.domain, args.key)
            params.update(domain=ref.domain.value, key=ref.key)
        except NotFound:
            if not args.domain:
                raise UsageError(f"No domain has a key '{args.key}'; name its domain with --domain.") from None
    if params.get("domain"):
        from ..domains import Domain

        params["domain"] = Domain.parse(params["domain"]).value
    return params


def cmd_walk(engine: Engine, args: argparse.Namespace, catalog: Catalog) -> int:
    from ..runbooks.escalation import Escalation

    tree = catalog.get(args.id)
    answers = Answers.parse(tree.id, args.answer)
    for name in answers.names():
        from ..errors import UsageError

        other, _, node = name.partition(":")
        named = catalog.trees.get(other)
        if named is None:
            raise UsageError(f"--answer names the runbook '{other}', which is not in {catalog.where()}.")
        if node not in named.nodes:
            raise UsageError(f"--answer names the node '{node}', which runbook '{other}' does not have "
                             f"(its nodes: {', '.join(named.nodes)}).")
    out = sys.stderr if args.json else sys.stdout
    prompter = TerminalPrompter(out, sys.stdin) if sys.stdin.isatty() else None
    walker = Walker(catalog, tree.id, engine, params=_params(engine, args), recorder=None if args.json else _print_step,
                    escalation=Escalation.from_engine(engine))
    if not args.json:
        say(f"Walking {tree.title} ({tree.id}); this opens no incident.")

    async def settle(w: Walker, outcome: ActionOutcome) -> ActionOutcome | None:
        if not args.json:
            say(f"  {outcome.message}; waiting up to {args.wait:g} s for a decision "
                "(approve it in the console or with 'oneiric approve ID').")
        return await w.wait(timeout=args.wait, interval=0.5)

    end: WalkEnd = asyncio.run(drive(walker, answers, prompter=prompter, settle=settle))
    if args.json:
        say(json_text({"runbook": tree.id, "params": {k: v for k, v in walker.params.items()
                                                      if isinstance(v, (str, int, float))},
                       "path": path_of(walker.history), "exit": end.to_dict(),
                       "breadcrumb": walker.breadcrumb()}, indent=2, sort_keys=True))
        return EXIT_OK
    if end.status == "finished":
        say(f"The walk ended at {end.name} ({end.kind}).")
    elif end.status == "waiting":
        say(f"The walk stopped at {end.name}: its proposal is still undecided; walk again once it is.")
    else:
        say(f"The walk stopped at {end.name}; nothing further was done.")
    return EXIT_OK


def cmd_drill(engine: Engine, args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..runbooks.drills import run_sync, selected
    from ..runbooks.loader import load_catalog

    if args.id and args.all:
        raise UsageError("runbook drill takes a runbook ID or --all, not both.")
    if args.interactive and (args.all or args.json):
        raise UsageError("--interactive is one drill of one runbook, walked by you: give its ID (and --drill NAME), "
                         "without --all or --json.")
    if args.console and not args.interactive:
        raise UsageError("--console is where an --interactive game day is walked: give --interactive too.")
    if args.interactive and not sys.stdin.isatty():
        raise UsageError("--interactive asks you at every step, so it needs a terminal on stdin.")
    if not args.id and not args.all:
        raise UsageError("runbook drill needs a runbook ID or --all (see 'oneiric runbook drill --help').")
    if args.drill and not args.id:
        raise UsageError("--drill names a drill of one runbook: give its ID too.")
    catalog = load_catalog(engine.settings_dir, roles=list(engine.settings.app.escalation.roles))
    pairs = selected(catalog, args.id)
    if args.drill:
        pairs = [(t, d) for t, d in pairs if d.id == args.drill]
        if not pairs:
            raise UsageError(f"Runbook '{args.id}' has no drill '{args.drill}' (its drills: "
                             f"{', '.join(d.id for d in catalog.get(args.id).drills) or 'none'}).")
    if not pairs:
        raise UsageError(f"Runbook '{args.id}' declares no drill." if args.id else "No runbook declares a drill.")
    if args.interactive and args.console:
        from .serve import game_day_console

        return game_day_console(engine.settings_dir, pairs[0][0].id, pairs[0][1].id)
    if args.interactive:
        return _game_day(engine, args, *pairs[0])
    results = run_sync(engine.settings_dir, pairs)
    failed = [r for r in results if not r.passed]
    if not engine.read_only:
        from ..runbooks.upkeep import record_drills

        record_drills(engine.store, results)  # `runbook show` says when each last passed
    if args.json:
        say(json_text({"drills": [r.to_dict() for r in results], "passed": len(results) - len(failed),
                       "failed": len(failed)}, indent=2, sort_keys=True))
    else:
        for r in results:
            say(f"{'PASS' if r.passed else 'FAIL'} {r.tree} / {r.drill} ({r.seconds:.1f} s): {r.why()}")
            if not r.passed:
                for line in r.injected:
                    say(f"     injected: {line}")
                say("     path: " + " > ".join(f"{s.tree}:{s.node}={s.value}" for s in r.path))
        say(f"\n{len(results) - len(failed)} of {len(results)} drill(s) passed.")
    return EXIT_ERROR if failed else EXIT_OK


def _game_day(engine: Engine, args: argparse.Namespace, tree: Tree, drill: Drill) -> int:
    """One drill walked by the operator (drills.py): the score is the exit reached."""
    from ..runbooks.drills import run_drill

    say(f"Game day: {tree.title} ({tree.id}), drill '{drill.id}'. A fault is injected into a throw-away copy of "
        "these settings with a fresh state; walk the runbook as you would for real. Actions change only the copy.")
    prompter = TerminalPrompter(sys.stdout, sys.stdin)
    result = asyncio.run(run_drill(engine.settings_dir, tree.id, drill.id, prompter=prompter, recorder=_print_step,
                                   announce=say))
    if result.error and result.reached is None:
        say(f"The game day could not run: {result.error}")
        return EXIT_ERROR
    if result.passed:
        say(f"\nScore: PASS. You reached {result.reached}, the exit this drill expects ({drill.text or drill.id}).")
        return EXIT_OK
    say(f"\nScore: MISS. You {'reached' if result.status == 'finished' else 'stopped at'} {result.reached}; the "
        f"drill expects {result.expected}." + (f" ({drill.text})" if drill.text else ""))
    return EXIT_ERROR
