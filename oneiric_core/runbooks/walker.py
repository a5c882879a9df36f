"""The walker: a pure state machine that walks one runbook tree against the engine.

No UI and no I/O of its own: facts and actions are called through facts.evaluate and
actions.perform. The front door (console panel, tests) drives it:

    w = Walker(catalog, "hot-swap-failed", engine, params={"domain": "adapter", "key": "cache"})
    await w.advance()          # runs checks until a node needs the operator
    w.view()                   # what to show: text, evidence, choices, action preview, contacts
    w.answer("retry")          # question
    await w.perform()          # action: a swap becomes a proposal; status "waiting" until decided
    await w.wait(timeout=30)   # or poll() from a timer
    w.back()                   # one step back; await w.rerun() re-runs the last check

Every step is appended to `history` and handed to `recorder` (an incident's timeline).

`to_state()` / `Walker.from_state()` turn a walk into plain JSON data and back, so a walk
outlives the process that walks it: a procedure step such as "restart this host" restarts
the console too, and the incident (incidents.py) keeps where its walk was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, UsageError
from .actions import ACTIONS, ActionOutcome, perform, proposal_outcome
from .facts import FactContext, FactResult, MissingParam, evaluate
from .loader import Catalog
from .model import ROUND_LIMIT_NODE, TREE_PREFIX, Node, Tree

if TYPE_CHECKING:
    from ..ports import FactsEngine

AUTO_STEPS = 50  # advance() stops after this many automatic steps in a row (a loop guard of last resort)
STATE_VERSION = 1  # of to_state()'s data
_FIELD = re.compile(r"\{(\w+)\}")


# What a walk's text says where a parameter is not set yet: an operator never reads a raw
# `{target}` (the walk asks for it at the step that needs it; until then, words).
STAND_INS = {
    "domain": "the domain (not chosen yet)",
    "key": "the key (not chosen yet)",
    "target": "the target provider (not chosen yet)",
    "source": "the source (not chosen yet)",
    "proposal": "(number not known yet)",
    "file": "the settings file (see the evidence)",
    "line": "?",
    "column": "?",
    "unknown_keys": "a key (not known yet)",
}


def stand_in(name: str) -> str:
    return STAND_INS.get(name) or f"the {name.replace('_', ' ')} (not known yet)"


def render(text: str, params: dict[str, Any], *, readable: bool = True) -> str:
    """`{key}` and friends replaced by the walk's parameters; an unset one by its stand-in in
    words (readable=False keeps it as `{name}`: a check's or action's arguments, where a
    placeholder is not text for the operator)."""
    def one(m: re.Match[str]) -> str:
        value = params.get(m[1])
        if value not in (None, ""):
            return str(value)
        return stand_in(m[1]) if readable else m[0]

    return _FIELD.sub(one, text)


@dataclass
class Step:
    tree: str
    node: str
    kind: str
    text: str
    value: str | None = None  # fact value, chosen answer, action outcome, "acknowledged"
    evidence: list[str] = field(default_factory=list)
    actor: str | None = None
    ts: float = field(default_factory=time.time)
    proposal_id: int | None = None
    approved_by: str | None = None
    target: str | None = None  # where the walk went next
    target_tree: str | None = None  # the tree of `target`
    severity: str | None = None  # the severity this step set (a `sets: severity` question)

    def to_dict(self) -> dict[str, Any]:
        return {"tree": self.tree, "node": self.node, "kind": self.kind, "text": self.text, "value": self.value,
                "evidence": list(self.evidence), "actor": self.actor, "ts": self.ts,
                "proposal": self.proposal_id, "approved_by": self.approved_by, "target": self.target,
                "severity": self.severity}


@dataclass
class _Frame:
    tree: Tree
    node: str
    params: dict[str, Any]
    status: str
    pending: ActionOutcome | None
    returns: list[tuple[Tree, str]]


class Walker:
    def __init__(self, catalog: Catalog, tree_id: str, engine: FactsEngine, *, params: dict[str, Any] | None = None,
                 actor: str | None = None, recorder: Callable[[Step], None] | None = None,
                 escalation: Any = None, severity: str | None = None) -> None:
        self.catalog = catalog
        self.engine = engine
        self.tree = catalog.get(tree_id)
        self.node_id = self.tree.start
        self.params: dict[str, Any] = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        self._pinned = set(self.params)  # given by the operator: facts do not overwrite these
        self.actor = actor or getattr(engine, "actor", None) or "operator"
        self.recorder = recorder
        self.escalation = escalation
        self.severity = severity
        self.history: list[Step] = []
        self.status = "at-node"  # at-node | waiting (an action's proposal) | finished
        self.pending: ActionOutcome | None = None
        self.last_result: FactResult | None = None
        self.started_at = time.time()
        self.visits: dict[str, int] = {self._visit_key(self.tree, self.node_id): 1}
        self._frames: list[_Frame] = []
        # Where to come back to when the runbook a `then` question opened ends (innermost last).
        self.returns: list[tuple[Tree, str]] = []

    # -- where we are ------------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        return self.tree.node(self.node_id)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def missing_params(self) -> list[str]:
        """Parameters the current node needs and the walk does not have: ask the operator."""
        node = self.node
        needs: tuple[str, ...] = ()
        if node.kind == "check" and node.fact:
            from .fact_index import FACTS

            needs = FACTS[node.fact].needs
        elif node.kind == "action" and node.action:
            spec = ACTIONS[node.action]
            needs = spec.needs
            if spec.via_proposal and not node.args.get("provider"):
                needs = (*needs, "target")  # a swap needs to know where to: ask before "Perform", not after
        return [n for n in needs if self.params.get(n) in (None, "")]

    def set_param(self, name: str, value: Any) -> None:
        self.params[name] = value
        self._pinned.add(name)

    def breadcrumb(self) -> list[str]:
        path = [f"{s.tree}:{s.node}" for s in self.history]
        if not self.finished:  # a finished walk's last step already is the node it ended on
            path.append(f"{self.tree.id}:{self.node_id}")
        return path

    @property
    def returns_to(self) -> Tree | None:
        """The runbook the walk goes back to when this one ends (a `then` question opened it)."""
        return self.returns[-1][0] if self.returns else None

    def view(self) -> dict[str, Any]:
        """Everything a front door shows for the current node."""
        node = self.node
        out: dict[str, Any] = {
            "tree": self.tree.id, "tree_title": self.tree.title, "node": node.id, "kind": node.kind,
            "title": render(node.title, self.params), "text": render(node.text, self.params),
            "status": self.status, "params": dict(self.params), "missing": self.missing_params(),
            "choices": list(node.choices), "where": render(node.where, self.params),
            "severity": self.severity,
            "returns_to": self.returns_to.title if self.returns_to else None,
        }
        # What the step that led here found (a check's evidence, an action's outcome, an
        # escalation's contacts), never an older step's: after an answer there is none.
        last = self.history[-1] if self.history else None
        led_here = last is not None and (self.finished or (last.target == node.id and last.target_tree == self.tree.id))
        out["evidence"] = list(last.evidence) if led_here and last is not None else []
        out["evidence_from"] = last.kind if led_here and last is not None else None
        if node.kind == "action":
            spec = ACTIONS[node.action or ""]
            out["action"] = {"name": spec.name, "changes": render(node.changes or spec.changes, self.params),
                             "via_proposal": spec.via_proposal,
                             "args": {k: render(str(v), self.params) for k, v in node.args.items()}}
            if self.pending is not None:
                out["action"]["pending"] = self.pending.to_dict()
        if node.kind == "escalate" and self.escalation is not None:
            out["escalation"] = self.escalation.brief(node.role or "", node.severity or self.severity)
        return out

    # -- moving ------------------------------------------------------------------------------------
    @staticmethod
    def _visit_key(tree: Tree, node_id: str) -> str:
        return f"{tree.id}:{node_id}"

    def _ctx(self, node: Node) -> FactContext:
        args = {k: render(v, self.params, readable=False) if isinstance(v, str) else v
                for k, v in node.args.items()}
        visits = {k.split(":", 1)[1]: v for k, v in self.visits.items() if k.startswith(self.tree.id + ":")}
        return FactContext(self.engine, self.params, args, visits, self.started_at)

    def _push(self) -> None:
        self._frames.append(_Frame(self.tree, self.node_id, dict(self.params), self.status, self.pending,
                                   list(self.returns)))

    def _goto(self, step: Step, target: str | None, *, back_to: str | None = None) -> None:
        """Move to `target` (None: the walk ends, or goes back to where a `then` question said).
        `back_to` is set when a `then` question opens another runbook: remember where to return."""
        self.history.append(step)
        if target is None and self.returns:
            tree, node_id = self.returns.pop()
            target = node_id
            self.tree = tree
        if target is None:
            self.status = "finished"
        else:
            if back_to is not None and target.startswith(TREE_PREFIX):
                self.returns.append((self.tree, back_to))
            tree, node_id = self.catalog.resolve_target(self.tree, target)
            key = self._visit_key(tree, node_id)
            rounds = self.visits.get(key, 0)
            if rounds >= tree.max_rounds and not tree.node(node_id).terminal:  # going round: stop
                self.params.update(looped_at=node_id, rounds=rounds)
                node_id = ROUND_LIMIT_NODE
                key = self._visit_key(tree, node_id)
            self.tree, self.node_id = tree, node_id
            step.target, step.target_tree = node_id, tree.id
            self.visits[key] = self.visits.get(key, 0) + 1
            self.status = "at-node"
        self.pending = None
        if self.recorder is not None:
            self.recorder(step)

    def _require(self, *kinds: str) -> Node:
        if self.finished:
            raise UsageError("The walk is finished.")
        node = self.node
        if node.kind not in kinds:
            raise UsageError(f"Node '{node.id}' is a {node.kind}, not a {' or '.join(kinds)}.")
        missing = self.missing_params()
        if missing:
            raise MissingParam(missing[0])
        return node

    @staticmethod
    def _branch(node: Node, value: str) -> str | None:
        return node.branches.get(value) or node.default or node.next

    async def run_check(self) -> Step:
        node = self._require("check")
        result = await evaluate(node.fact or "", self._ctx(node))
        self.params.update({k: v for k, v in result.sets.items() if v not in (None, "") and k not in self._pinned})
        self.last_result = result
        target = self._branch(node, result.value)
        if target is None:
            raise UsageError(f"Node '{node.id}' has no branch for the value '{result.value}'.")
        self._push()
        step = Step(self.tree.id, node.id, "check", render(node.text, self.params), result.value,
                    list(result.evidence), self.actor)
        self._goto(step, target)
        return step

    def answer(self, choice: str, *, actor: str | None = None) -> Step:
        node = self._require("question")
        if choice not in node.choices:
            raise UsageError(f"'{choice}' is not a choice here; choose one of: {', '.join(node.choices)}.")
        self._push()
        step = Step(self.tree.id, node.id, "question", render(node.text, self.params), choice, [], actor or self.actor)
        if node.sets == "severity":
            self.severity = step.severity = choice
        self._goto(step, node.choices[choice], back_to=node.then)
        return step

    def acknowledge(self, *, actor: str | None = None) -> Step:
        """Escalate (and done) nodes: the operator has read it; go on, or finish."""
        node = self._require("escalate", "done")
        self._push()
        evidence = []
        if node.kind == "escalate" and self.escalation is not None:
            evidence = self.escalation.lines(node.role or "", node.severity or self.severity)
        step = Step(self.tree.id, node.id, node.kind, render(node.text, self.params),
                    "escalated" if node.kind == "escalate" else "done", evidence, actor or self.actor)
        self._goto(step, node.next or node.default)
        return step

    async def perform(self, *, actor: str | None = None) -> ActionOutcome:
        """Run the current action: its outcome moves the walk on, or (a swap proposal waiting
        for an approver) leaves it `waiting`; then call poll() or wait()."""
        node = self._require("action")
        if self.status == "waiting":
            raise UsageError("This step already waits for its proposal's outcome.")
        who = actor or self.actor
        outcome = await perform(node.action or "", self._ctx(node), who)
        self._push()
        self._frames[-1].status = "at-node"
        if outcome.pending:
            self.status, self.pending = "waiting", outcome
            return outcome
        self._settle(node, outcome, who)
        return outcome

    async def poll(self) -> ActionOutcome | None:
        """Check a waiting proposal once; moves on and returns the outcome when it is decided."""
        if self.status != "waiting" or self.pending is None or self.pending.proposal_id is None:
            return None
        outcome = proposal_outcome(self.engine, self.pending.proposal_id)
        if outcome.pending:
            self.pending = outcome
            return None
        self._settle(self.node, outcome, self.pending.requested_by or self.actor)
        return outcome

    async def wait(self, timeout: float = 60.0, interval: float = 0.05) -> ActionOutcome | None:
        deadline = time.monotonic() + timeout
        while self.status == "waiting":
            outcome = await self.poll()
            if outcome is not None:
                return outcome
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(interval)
        return None

    def _settle(self, node: Node, outcome: ActionOutcome, actor: str) -> None:
        step = Step(self.tree.id, node.id, "action", render(node.text, self.params), outcome.outcome,
                    [outcome.message], actor, proposal_id=outcome.proposal_id, approved_by=outcome.approved_by)
        self._goto(step, self._branch(node, outcome.outcome))

    async def advance(self, max_steps: int = AUTO_STEPS) -> list[Step]:
        """Run checks until a node needs the operator (question, action, escalate, done, a
        missing parameter) or max_steps automatic steps have run."""
        steps: list[Step] = []
        while not self.finished and self.node.kind == "check" and not self.missing_params() and len(steps) < max_steps:
            steps.append(await self.run_check())
        return steps

    def back(self) -> bool:
        """Undo the last step (the engine is not rolled back: an applied action stays applied)."""
        if not self._frames:
            return False
        frame = self._frames.pop()
        self.tree, self.node_id, self.params = frame.tree, frame.node, frame.params
        self.returns = list(frame.returns)
        self.status, self.pending = ("at-node", None)
        if self.history:
            self.history.pop()
        self.last_result = None
        return True

    async def rerun(self) -> Step:
        """Run the last check again (after back-tracking to it)."""
        if self.node.kind != "check":
            for index in range(len(self.history) - 1, -1, -1):
                if self.history[index].kind == "check":
                    while len(self.history) > index:
                        self.back()
                    break
            else:
                raise UsageError("There is no check to re-run.")
        return await self.run_check()

    # -- saving and resuming -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume this walk in another process, as JSON-able data."""
        def outcome(o: ActionOutcome | None) -> dict[str, Any] | None:
            return None if o is None else dataclasses.asdict(o)

        return {
            "version": STATE_VERSION, "tree": self.tree.id, "node": self.node_id, "params": dict(self.params),
            "pinned": sorted(self._pinned), "actor": self.actor, "severity": self.severity,
            "status": self.status, "pending": outcome(self.pending), "started_at": self.started_at,
            "visits": dict(self.visits), "returns": [[t.id, n] for t, n in self.returns],
            "frames": [{"tree": f.tree.id, "node": f.node, "params": dict(f.params), "status": f.status,
                        "pending": outcome(f.pending), "returns": [[t.id, n] for t, n in f.returns]}
                       for f in self._frames],
            "history": [dataclasses.asdict(step) for step in self.history],
        }

    @classmethod
    def from_state(cls, catalog: Catalog, engine: FactsEngine, state: dict[str, Any], *,
                   recorder: Callable[[Step], None] | None = None, escalation: Any = None) -> Walker:
        """The walk `to_state()` saved, on `catalog` as it is now. UsageError, in one sentence,
        when that is no longer possible (a runbook or node it was on has been removed)."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise UsageError("The saved walk was written by another version of Oneiric; start a new walk.")

        def tree(tree_id: str) -> Tree:
            try:
                return catalog.get(tree_id)
            except NotFound:
                raise UsageError(f"The saved walk was on runbook '{tree_id}', which is no longer in "
                                 f"{catalog.where()}; start a new walk.") from None

        def outcome(data: dict[str, Any] | None) -> ActionOutcome | None:
            return None if data is None else ActionOutcome(**data)

        tree(state["tree"])
        walker = cls(catalog, state["tree"], engine, params=state["params"], actor=state["actor"],
                     recorder=recorder, escalation=escalation, severity=state.get("severity"))
        walker.node_id = state["node"]
        if walker.node_id not in walker.tree.nodes:
            raise UsageError(f"The saved walk was at node '{walker.node_id}' of runbook '{walker.tree.id}', "
                             "which no longer exists; start a new walk.")
        walker._pinned = set(state.get("pinned") or ())
        walker.status = state["status"]
        walker.pending = outcome(state.get("pending"))
        walker.started_at = float(state["started_at"])
        walker.visits = {str(k): int(v) for k, v in state.get("visits", {}).items()}
        walker.returns = [(tree(t), n) for t, n in state.get("returns", [])]
        walker._frames = [_Frame(tree(f["tree"]), f["node"], dict(f["params"]), f["status"], outcome(f.get("pending")),
                                 [(tree(t), n) for t, n in f.get("returns", [])]) for f in state.get("frames", [])]
        walker.history = [Step(**step) for step in state.get("history", [])]
        return walker
