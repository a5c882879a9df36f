"""Drills: every runbook tested against the faults it claims to handle (docs/architecture.md §8).

A tree's `drills:` (model.Drill) each name faults, scripted answers and the exit the walk must
reach. `run_drill` copies the settings to a temporary directory, gives it a fresh state
directory, injects the faults (faults.py), starts a REAL host on the copy, walks the tree there
with only the automated checks, the scripted answers (every action step is performed unless
an answer says `stop`; a manual step is confirmed as done, whether or not anything did it: that
is how a drill finds a check that confirms what it never checked) and a second person who decides the walk's
swap proposals, and compares where the walk ended with the exit the drill expects. Then it
stops the host and deletes the directory. The operator's own settings and state are only read
(the settings, to copy them).

The copy is the settings as the operator has them, with the changes that keep a drill to
itself: telemetry exports nothing, the store is the copy's own SQLite file (never a shared
PostgreSQL store), the state directory is the temporary one, and the copy is writable with no
access rules (the drill's operator and approver are names in this process, not OS accounts).

A game day (`oneiric runbook drill ID --interactive`) is the same drill with the operator in
place of the scripted answers, in the terminal: the faults and `during:` happen as scripted,
the operator answers every question and action, and the score is whether the walk ends at the
exit the drill expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OneiricError
from .actions import ActionOutcome
from .drive import PERFORM, Answers, NoAnswer, Prompter, WalkEnd, drive, path_of
from .faults import DRILL_ACTOR, DRILL_APPROVER, FAULTS, FaultContext, inject
from .loader import Catalog, load_catalog
from .model import Drill, Fault, Tree
from .walker import Step, Walker


@dataclass
class DrillResult:
    tree: str
    drill: str
    text: str
    expected: str  # tree:node
    reached: str | None  # tree:node where the walk ended (None: it never got going)
    status: str  # finished | stopped | waiting | error
    injected: list[str] = field(default_factory=list)  # what each fault did, in order
    path: list[Step] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and self.reached == self.expected and self.status == "finished"

    def why(self) -> str:
        """One sentence: what happened against what was expected."""
        if self.error:
            return self.error
        if self.status != "finished":
            return f"the walk {self.status} at {self.reached}, expected to end at {self.expected}"
        if self.reached != self.expected:
            return f"the walk ended at {self.reached}, expected {self.expected}"
        return f"the walk ended at {self.reached}, as expected"

    def to_dict(self) -> dict[str, Any]:
        return {"tree": self.tree, "drill": self.drill, "text": self.text, "expected": self.expected,
                "reached": self.reached, "status": self.status, "passed": self.passed, "why": self.why(),
                "injected": list(self.injected), "path": path_of(self.path), "seconds": round(self.seconds, 3)}


def qualified(tree: Tree, name: str) -> str:
    return name if ":" in name else f"{tree.id}:{name}"


def selected(catalog: Catalog, tree_id: str | None) -> list[tuple[Tree, Drill]]:
    """The drills of one tree (every tree when tree_id is None), in catalog order."""
    trees = [catalog.get(tree_id)] if tree_id else sorted(catalog.trees.values(), key=lambda t: t.id)
    return [(tree, drill) for tree in trees for drill in tree.drills]


def isolate(settings: Path) -> None:
    """The copy's app.yml: no telemetry export, no shared store (see the module docstring)."""
    import io

    from ruamel.yaml import YAML

    app = settings / "app.yml"
    yaml = YAML()
    data = yaml.load(app.read_text(encoding="utf-8")) if app.exists() else None
    if data is None:
        data = {}
    data.pop("store", None)
    data.pop("state_dir", None)
    data.pop("access", None)  # who may act is the operator's deployment's business, not the copy's
    data["read_only"] = False  # the copy is there to be changed
    data["telemetry"] = {"exporter": "none"}
    out = io.StringIO()
    yaml.dump(data, out)
    app.write_text(out.getvalue(), encoding="utf-8")


async def run_drill(settings_dir: Path, tree_id: str, drill_id: str, *, keep: Path | None = None,
                    prompter: Prompter | None = None, recorder: Callable[[Step], None] | None = None,
                    announce: Callable[[str], None] | None = None) -> DrillResult:
    """Run one drill of `tree_id` against a host started on a copy of `settings_dir`.
    `keep`: run in this (empty) directory and leave it for inspection, instead of a temporary one.
    `prompter`: a game day: the operator answers every question and action (the drill's
    scripted answers are not used; its faults and `during:` are), `recorder` sees each step and
    `announce` hears where the copy is once the faults are in."""
    started = time.monotonic()
    root = keep or Path(tempfile.mkdtemp(prefix="oneiric-drill-"))
    settings = root / "settings"
    result = DrillResult(tree_id, drill_id, "", f"{tree_id}:?", None, "error")
    try:
        shutil.copytree(settings_dir, settings, symlinks=False,
                        ignore=shutil.ignore_patterns(".oneiric", "*.sqlite", "*.sqlite-*"))
        isolate(settings)
        catalog = load_catalog(settings)
        tree = catalog.get(tree_id)
        drill = next((d for d in tree.drills if d.id == drill_id), None)
        if drill is None:
            known = ", ".join(d.id for d in tree.drills) or "none"
            raise OneiricError(f"Runbook '{tree_id}' has no drill '{drill_id}' (its drills: {known}).")
        result.text, result.expected = drill.text, qualified(tree, drill.expect)
        await _walk(catalog, tree, drill, FaultContext(settings, root / "state"), result,
                    prompter=prompter, recorder=recorder, announce=announce)
    except OneiricError as exc:
        result.error = str(exc)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


async def _walk(catalog: Catalog, tree: Tree, drill: Drill, ctx: FaultContext, result: DrillResult, *,
                prompter: Prompter | None = None, recorder: Callable[[Step], None] | None = None,
                announce: Callable[[str], None] | None = None) -> None:
    from ..engine import Engine

    def apply_all(faults: list[Fault], when: str | None) -> list[Fault]:
        return [f for f in faults if when is None or FAULTS[f.kind].when == when]

    for fault in apply_all(drill.faults, "before-start"):
        result.injected.append(await inject(ctx, fault.kind, fault.args))
    engine = Engine(ctx.settings_dir, state_dir=ctx.state_dir, actor=DRILL_ACTOR)
    try:
        await engine.start()
        ctx.engine = engine
        for fault in apply_all(drill.faults, "running"):
            result.injected.append(await inject(ctx, fault.kind, fault.args))
        walker = Walker(catalog, tree.id, ctx.engine, params=dict(drill.params), actor=DRILL_ACTOR,
                        recorder=recorder)  # ctx.engine: a restart-host fault may have started another
        walker.started_at = time.time()
        scripted = {} if prompter is not None else {qualified(tree, n): list(c) for n, c in drill.answers.items()}
        answers = Answers(tree.id, scripted)
        if announce is not None:
            announce(f"The fault is in a throw-away copy at {ctx.settings_dir.parent} (settings/ and state/); "
                     "a host runs there now.")
        during = {qualified(tree, n): faults for n, faults in drill.during.items()}

        async def arrive(w: Walker) -> None:
            name = f"{w.tree.id}:{w.node.id}"
            for fault in during.pop(name, []):  # once: the first time the walk gets there
                result.injected.append(f"at {name}: " + await inject(ctx, fault.kind, fault.args))
            w.engine = ctx.engine  # a restart-host fault started another host

        async def settle(w: Walker, outcome: ActionOutcome) -> ActionOutcome | None:
            if outcome.proposal_id is None or drill.proposals == "leave":
                return None
            if drill.proposals == "approve":
                with contextlib.suppress(OneiricError):  # a refused swap is the walk's to see
                    await ctx.engine.approve(outcome.proposal_id, actor=DRILL_APPROVER)
            else:
                ctx.engine.reject(outcome.proposal_id, actor=DRILL_APPROVER, comment="rejected in a drill")
            return await w.wait(timeout=30)

        try:
            end: WalkEnd = await drive(walker, answers, prompter=prompter, settle=settle, arrive=arrive,
                                        act=None if prompter is not None else PERFORM)
            result.reached, result.status = end.name, end.status
        except NoAnswer as exc:
            result.reached, result.status = f"{walker.tree.id}:{walker.node.id}", "stopped"
            result.error = str(exc).replace("pass --answer", "the drill needs answers:")
        result.path = list(walker.history)
    finally:
        for task in ctx.tasks:
            task.cancel()
        for task in ctx.tasks:
            with contextlib.suppress(BaseException):
                await task
        running = ctx.engine or engine  # a restart-host fault stopped and closed the first one itself
        with contextlib.suppress(Exception):
            await running.stop(timeout=5)
        running.close()
        for cleanup in reversed(ctx.cleanups):
            with contextlib.suppress(Exception):
                await cleanup()


async def run_drills(settings_dir: Path, pairs: list[tuple[Tree, Drill]]) -> list[DrillResult]:
    """One after the other: each starts and stops its own host."""
    return [await run_drill(settings_dir, tree.id, drill.id) for tree, drill in pairs]


def run_sync(settings_dir: Path, pairs: list[tuple[Tree, Drill]]) -> list[DrillResult]:
    return asyncio.run(run_drills(settings_dir, pairs))
