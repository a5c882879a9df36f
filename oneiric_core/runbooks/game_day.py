"""A game day in the console: one drill's fault, walked by the operator, scored at the end.

`oneiric runbook drill ID --interactive --console` is the drill of drills.py with the console
in place of the scripted answers: the settings are copied to a throw-away directory (isolated
as a drill's copy is), the drill's faults are injected, and the console starts on the copy as
its host. The console walks the tree as for real; this module does what the drill would do
around the walk, so the console holds none of it:

- `prepare` copies and injects the faults that come before a host starts;
- `host_started(engine)` injects the ones that need the running host (a swap, a pause);
- `arrive(walker)` injects the drill's `during:` faults when the walk first reaches their
  node (the operator "fixed the file"), as drive.py's `arrive` does for a drill;
- `settle(walker)` lets the drill's second person decide the walk's swap proposal (the
  drill's `proposals:`), as a drill's settle does; the operator may also decide it in the walk;
- `score(walker)`: once the walk has finished, PASS when it ended at the exit the drill
  expects, else MISS, in one sentence;
- `stop()` stops what the faults started (backends, servers); `remove()` deletes the copy.

The operator's own settings and state are only read (the settings, to copy them).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OneiricError, UsageError
from .drills import isolate, qualified
from .faults import DRILL_APPROVER, FAULTS, FaultContext, inject
from .loader import Catalog, load_catalog
from .model import Drill, Fault, Tree


@dataclass
class GameDay:
    tree: Tree
    drill: Drill
    root: Path
    catalog: Catalog
    ctx: FaultContext
    injected: list[str] = field(default_factory=list)
    scored: tuple[bool, str] | None = None  # set once the walk has finished
    _during: dict[str, list[Fault]] = field(default_factory=dict)

    @property
    def settings_dir(self) -> Path:
        return self.ctx.settings_dir

    @property
    def state_dir(self) -> Path:
        return self.ctx.state_dir

    @property
    def params(self) -> dict[str, Any]:
        """The walk's parameters the drill gives (domain, key, and maybe a swap's target)."""
        return dict(self.drill.params)

    @property
    def expected(self) -> str:
        return qualified(self.tree, self.drill.expect)

    def intro(self) -> str:
        return (f"Game day: {self.tree.title}, drill '{self.drill.id}'. A fault is injected into a throw-away copy "
                f"at {self.root}; walk the runbook as you would for real. Actions change only the copy.")

    @classmethod
    async def prepare(cls, settings_dir: Path, tree_id: str, drill_id: str | None) -> GameDay:
        """Copy the settings, find the drill (the tree's first when `drill_id` is None) and
        inject its faults that come before a host starts. UsageError when there is no such drill."""
        root = Path(tempfile.mkdtemp(prefix="oneiric-game-day-"))
        try:
            settings = root / "settings"
            shutil.copytree(settings_dir, settings, symlinks=False,
                            ignore=shutil.ignore_patterns(".oneiric", "*.sqlite", "*.sqlite-*"))
            isolate(settings)
            catalog = load_catalog(settings)
            tree = catalog.get(tree_id)
            drill = next((d for d in tree.drills if drill_id is None or d.id == drill_id), None)
            if drill is None:
                known = ", ".join(d.id for d in tree.drills) or "none"
                raise UsageError(f"Runbook '{tree_id}' has no drill '{drill_id}' (its drills: {known}).")
            day = cls(tree, drill, root, catalog, FaultContext(settings, root / "state"))
            day._during = {qualified(tree, n): list(faults) for n, faults in drill.during.items()}
            for fault in drill.faults:
                if FAULTS[fault.kind].when == "before-start":
                    day.injected.append(await inject(day.ctx, fault.kind, fault.args))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return day

    async def host_started(self, engine: Any) -> None:
        """The console hosts the copy now: the faults that need a running host."""
        self.ctx.engine = engine
        for fault in self.drill.faults:
            if FAULTS[fault.kind].when != "before-start":
                self.injected.append(await inject(self.ctx, fault.kind, fault.args))

    async def arrive(self, walker: Any) -> None:
        """The walk stands at a node that needs the operator: its `during:` faults, once."""
        name = f"{walker.tree.id}:{walker.node.id}"
        for fault in self._during.pop(name, []):
            self.injected.append(f"at {name}: " + await inject(self.ctx, fault.kind, fault.args))

    async def settle(self, walker: Any) -> None:
        """The walk's proposal waits: the drill's second person decides it (or leaves it)."""
        pending = walker.pending
        if walker.status != "waiting" or pending is None or pending.proposal_id is None:
            return
        if self.drill.proposals == "approve":
            with contextlib.suppress(OneiricError):  # a refused swap is the walk's to see
                await self.ctx.engine.approve(pending.proposal_id, actor=DRILL_APPROVER)
        elif self.drill.proposals == "reject":
            with contextlib.suppress(OneiricError):
                self.ctx.engine.reject(pending.proposal_id, actor=DRILL_APPROVER, comment="rejected in a game day")

    def score(self, walker: Any) -> tuple[bool, str] | None:
        """PASS or MISS with the exit reached, once the walk has finished (None before)."""
        if not walker.finished or not walker.history:
            return None
        last = walker.history[-1]
        reached = f"{last.tree}:{last.node}"
        if reached == self.expected:
            self.scored = (True, f"Score: PASS. You reached {reached}, the exit this drill expects"
                                 + (f" ({self.drill.text})." if self.drill.text else "."))
        else:
            self.scored = (False, f"Score: MISS. You reached {reached}; the drill expects {self.expected}."
                                  + (f" ({self.drill.text})" if self.drill.text else ""))
        return self.scored

    async def stop(self) -> None:
        """Stop what the faults started (on the loop that started it: the console's)."""
        tasks, cleanups = list(self.ctx.tasks), list(self.ctx.cleanups)
        self.ctx.tasks.clear()
        self.ctx.cleanups.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                await cleanup()

    def remove(self) -> None:
        """Delete the throw-away copy (once nothing runs on it any more)."""
        shutil.rmtree(self.root, ignore_errors=True)
