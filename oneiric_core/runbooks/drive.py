"""Driving a walk to its end without the console: scripted answers, a prompt, or neither.

`oneiric runbook walk` and the drills walk the same Walker the console does; this module is the
loop they share. At each node that needs the operator it takes the scripted answer for that
node (`--answer NODE=CHOICE`, a drill's `answers:`), else asks the Prompter (a terminal), else
stops with NoAnswer: one sentence naming the node and its choices.

Answers name a node of the runbook the walk started in (`retry`) or, qualified, a node of a
runbook it jumps to (`hot-swap-failed:retry`). A node answered with a list takes them in order,
the last one again for every further visit (a loop's "try again"). A choice is its label, its
number as a prompt shows it (1 = the first), or the start of one label (`no` for
`no - resume it`). Action steps have two choices, `stop` (change nothing and end here, the
safe one, shown first) and `perform` (`done` says the same for a manual step).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import UsageError
from .actions import ActionOutcome
from .facts import MissingParam
from .walker import Step, Walker

STOP, PERFORM = "stop", "perform"
ACTION_CHOICES = (STOP, PERFORM)
_SYNONYMS = {"done": PERFORM, "yes": PERFORM, "confirm": PERFORM, "no": STOP, "skip": STOP}


class NoAnswer(UsageError):
    """The walk reached a node that needs the operator, and nobody can answer it."""


def choices_of(walker: Walker) -> list[str]:
    """What the operator can answer at the current node, the safe choice first."""
    node = walker.node
    if node.kind == "question":
        return list(node.choices)
    if node.kind == "action":
        return list(ACTION_CHOICES)
    return []


def match_choice(choices: list[str], given: str, where: str) -> str:
    """The choice `given` names (label, 1-based number, synonym or unique prefix)."""
    text = given.strip()
    if text in choices:
        return text
    if text.isdigit() and 1 <= int(text) <= len(choices):
        return choices[int(text) - 1]
    lowered = text.lower()
    if lowered in _SYNONYMS and _SYNONYMS[lowered] in choices and lowered not in (c.lower() for c in choices):
        return _SYNONYMS[lowered]
    exact = [c for c in choices if c.lower() == lowered]
    starts = [c for c in choices if c.lower().startswith(lowered)] if lowered else []
    found = exact or starts
    if len(found) == 1:
        return found[0]
    listed = "; ".join(f"{n}) {c}" for n, c in enumerate(choices, 1))
    if len(found) > 1:
        raise UsageError(f"'{given}' matches more than one choice at {where}: {listed}.")
    raise UsageError(f"'{given}' is not a choice at {where}; choose one of: {listed}.")


@dataclass
class Answers:
    """Scripted answers by node name; see the module docstring."""

    home: str  # the runbook the walk started in: its nodes go by their plain id
    by_node: dict[str, list[str]] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, home: str, pairs: list[str]) -> Answers:
        """`--answer NODE=CHOICE` pairs (repeatable, in order)."""
        out = cls(home)
        for pair in pairs:
            node, sep, choice = pair.partition("=")
            if not sep or not node.strip():
                raise UsageError(f"--answer '{pair}' is not NODE=CHOICE, e.g. --answer intentional=no.")
            out.by_node.setdefault(out._name(node.strip()), []).append(choice.strip())
        return out

    def _name(self, name: str) -> str:
        tree, sep, node = name.partition(":")
        return name if sep else f"{self.home}:{tree}"

    def names(self) -> list[str]:
        return list(self.by_node)

    def take(self, tree: str, node: str) -> str | None:
        key = f"{tree}:{node}"
        given = self.by_node.get(key) or self.by_node.get(self._name(key))
        if not given:
            return None
        index = self.taken.get(key, 0)
        self.taken[key] = index + 1
        return given[min(index, len(given) - 1)]


class Prompter(Protocol):
    """A terminal that can ask the operator (None when stdin is not one)."""

    def choose(self, walker: Walker, choices: list[str]) -> str | None: ...  # None: end the walk here

    def param(self, walker: Walker, name: str) -> str | None: ...


@dataclass
class WalkEnd:
    """How a driven walk ended: finished at a done/escalate node, or stopped before that."""

    status: str  # finished | stopped (the operator chose stop) | waiting (a proposal still undecided)
    tree: str
    node: str
    kind: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.tree}:{self.node}"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "tree": self.tree, "node": self.node, "kind": self.kind, "text": self.text}


def where(walker: Walker) -> str:
    return f"node '{walker.node.id}' of runbook '{walker.tree.id}'"


Settle = Callable[[Walker, ActionOutcome], Awaitable[ActionOutcome | None]]
Arrive = Callable[[Walker], Awaitable[None]]


async def drive(walker: Walker, answers: Answers, *, prompter: Prompter | None = None,
                settle: Settle | None = None, arrive: Arrive | None = None, act: str | None = None,
                max_steps: int = 500) -> WalkEnd:
    """Walk until the walk finishes, the operator stops it, or a proposal stays undecided.

    `arrive(walker)` runs each time the walk reaches a node that is not an automated check
    (a drill injects its `during:` faults there). `settle(walker, outcome)` decides what
    happens to a swap proposal the walk made (a drill's second person decides; the CLI waits for
    a real approver); None leaves it waiting. `act` answers every action step no answer names
    (a drill performs them: its host is a throw-away one). Raises NoAnswer when a node needs an answer that
    neither `answers` nor `prompter` gives."""
    for _ in range(max_steps):
        if walker.finished:
            last = walker.history[-1]
            return WalkEnd("finished", last.tree, last.node, last.kind, last.text)
        missing = walker.missing_params()
        if missing:
            _fill(walker, missing[0], answers, prompter)
            continue
        node = walker.node
        if node.kind == "check":
            try:
                await walker.advance()
            except MissingParam as exc:
                _fill(walker, exc.name, answers, prompter)
            continue
        if arrive is not None:
            await arrive(walker)
        if node.kind in ("escalate", "done"):
            walker.acknowledge()
            continue
        choice = _answer(walker, answers, prompter, act if node.kind == "action" else None)
        if choice is None or (node.kind == "action" and choice == STOP):
            return _end(walker, "stopped")
        if node.kind == "question":
            walker.answer(choice)
            continue
        outcome = await walker.perform()
        if outcome.pending:
            decided = await settle(walker, outcome) if settle is not None else None
            if decided is None and walker.status == "waiting":
                return _end(walker, "waiting")
    raise UsageError(f"The walk took more than {max_steps} steps without ending; it stopped at {where(walker)}.")


def _end(walker: Walker, status: str) -> WalkEnd:
    view = walker.view()
    return WalkEnd(status, walker.tree.id, walker.node.id, walker.node.kind, view["text"])


def _answer(walker: Walker, answers: Answers, prompter: Prompter | None, default: str | None) -> str | None:
    choices = choices_of(walker)
    given = answers.take(walker.tree.id, walker.node.id)
    if given is not None:
        return match_choice(choices, given, where(walker))
    if default is not None:
        return default
    if prompter is not None:
        return prompter.choose(walker, choices)
    listed = "; ".join(f"{n}) {c}" for n, c in enumerate(choices, 1))
    raise NoAnswer(f"The walk needs an answer at {where(walker)} ({walker.node.kind}: {walker.view()['text']}); "
                   f"pass --answer {_qualified(walker)}=CHOICE with one of: {listed}.")


def _qualified(walker: Walker) -> str:
    start = walker.history[0].tree if walker.history else walker.tree.id
    return walker.node.id if walker.tree.id == start else f"{walker.tree.id}:{walker.node.id}"


def _fill(walker: Walker, name: str, answers: Answers, prompter: Prompter | None) -> None:
    value = prompter.param(walker, name) if prompter is not None else None
    if value in (None, ""):
        raise NoAnswer(f"The walk needs the parameter '{name}' at {where(walker)}; pass --{name} "
                       f"(e.g. --domain adapter --key cache).")
    walker.set_param(name, value)


def path_of(steps: list[Step]) -> list[dict[str, Any]]:
    """The walk's path for JSON: every step with its verdict and evidence."""
    return [step.to_dict() for step in steps]
