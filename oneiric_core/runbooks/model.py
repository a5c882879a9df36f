"""The runbook tree format: nodes, branches, and the structural checks every tree must pass.

A tree is one YAML mapping (one file in settings/runbooks/):

    id: hot-swap-failed            # the name `oneiric runbook show` takes
    title: Hot-swap failed
    reviewed: 2025-06-01           # ISO dates; `oneiric runbook list` flags an overdue next_review
    next_review: 2025-09-01
    params: [domain, key]          # filled from the console's selection, else asked
    start: state                   # the first node (default: the first in the list)
    nodes:
      - {id: state, kind: check, fact: key.last_swap, text: "...", branches: {rolled-back: why}, default: verify}
      - {id: ask, kind: question, text: "...", choices: {"yes, retry": retry, "no": lead}}
      - {id: retry, kind: action, action: swap, args: {provider: "{target}"}, branches: {applied: verify},
         default: lead}
      - {id: lead, kind: escalate, role: engineering_lead, text: "..."}
      - {id: ok, kind: done, text: "..."}

A branch target is a node id of the same tree, or `tree:<id>` to continue in another tree.
A tree may declare `drills:` (scenarios: a fault injected into a throw-away copy of the
settings and state, the scripted answers, and the exit the walk must reach; see drills.py).

A question may carry `sets: severity` (its answers are P0-P3 and become the walk's and the
incident's severity) and `then: <node>` (when a choice opens another runbook, the walk comes
back to that node once the other runbook's walk ends, instead of finishing).

The safe choice comes first: a question whose choices lead both to a step that changes
something (an action that mutates, a manual step) and to one that does not must offer one that
does not first; a question may also name its safe choice (`safe: <label>`, e.g. when no choice
leads straight to an action but one is the careful one), and then that label must be first.
check_structure refuses a tree that breaks either, in one sentence naming the node.
Text may use `{domain}`, `{key}`, `{source}` and any value a fact set (`{target}`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

KINDS = ("check", "question", "action", "escalate", "done")
PARAMS = ("domain", "key", "source")
TREE_PREFIX = "tree:"
_NODE_FIELDS = {"id", "kind", "text", "fact", "args", "branches", "default", "choices", "action", "next",
                "role", "severity", "changes", "where", "title", "sets", "then", "safe"}
SETTABLE = ("severity",)  # what a question's answer can set for the walk (`sets: severity`)
_TREE_FIELDS = {"id", "title", "summary", "kind", "reviewed", "next_review", "params", "start", "nodes", "symptom",
                "severity", "owner", "sources", "max_rounds", "drills"}
# A walk that comes back to the same node more than a tree's `max_rounds` times is going round
# without getting anywhere: it is sent to this node instead, which every tree has (parse_tree
# adds it), and which escalates with the walk's evidence. A tree whose loop is the point (one
# round per host of a rolling update) raises `max_rounds`.
ROUND_LIMIT_NODE = "round-limit"
DEFAULT_MAX_ROUNDS = 3


class TreeError(ConfigError):
    """A runbook file that cannot be used; the message names the file and the node."""


@dataclass
class Node:
    id: str
    kind: str
    text: str = ""
    title: str = ""
    fact: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # value (or action outcome) -> target
    default: str | None = None  # target when no branch matches
    choices: dict[str, str] = field(default_factory=dict)  # question: label -> target, in order
    action: str | None = None
    next: str | None = None
    role: str | None = None
    severity: str | None = None
    changes: str = ""
    where: str = ""  # a question about something outside the engine: where to look
    sets: str | None = None  # question: the answer becomes this walk value (only `severity`)
    then: str | None = None  # question: where the walk comes back to when a `tree:` choice's walk ends
    safe: str | None = None  # question: the choice that changes nothing (it must be offered first)

    def targets(self) -> list[str]:
        out = [*self.branches.values(), *self.choices.values()]
        out += [t for t in (self.default, self.next, self.then) if t]
        return out

    @property
    def terminal(self) -> bool:
        """A node that can end a walk: done, or an escalation with nowhere further to go."""
        return self.kind == "done" or (self.kind == "escalate" and not self.targets())


@dataclass(frozen=True)
class Fault:
    """One fault (or one change an operator would make) for a drill: a name from the
    faults.py registry and its arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Drill:
    """A scenario the tree claims to handle: inject `faults` into a throw-away copy of the
    settings and state, walk with only the automated checks and `answers`, and the walk must
    end at `expect`. `during` injects more (what an operator would do at that step: fix the
    file, bring the backend up) when the walk reaches a node. Node names are this tree's ids,
    or `tree-id:node` for a node of a runbook the walk jumps to."""

    id: str
    expect: str
    text: str = ""
    faults: list[Fault] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)
    during: dict[str, list[Fault]] = field(default_factory=dict)
    proposals: str = "approve"  # what a second operator does with the walk's swap proposals


@dataclass
class Tree:
    id: str
    title: str
    nodes: dict[str, Node]
    start: str
    file: Path
    summary: str = ""
    kind: str = "tree"  # tree | procedure
    reviewed: dt.date | None = None
    next_review: dt.date | None = None
    params: list[str] = field(default_factory=list)
    symptom: str = ""
    severity: str | None = None
    owner: str | None = None
    max_rounds: int = DEFAULT_MAX_ROUNDS
    drills: list[Drill] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def overdue(self, today: dt.date | None = None) -> bool:
        today = today or dt.date.today()
        return self.next_review is None or self.next_review < today

    def checks(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "check"]

    def external_trees(self) -> set[str]:
        return {t[len(TREE_PREFIX):] for n in self.nodes.values() for t in n.targets() if t.startswith(TREE_PREFIX)}


def _date(value: Any, file: Path, name: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise TreeError(f"{file}: {name} '{value}' is not a date like 2025-06-30.") from None


def _str_map(raw: Any, file: Path, node_id: str, name: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TreeError(f"{file}: node '{node_id}' has a {name} that is not a mapping.")
    out = {}
    for k, v in raw.items():
        if not isinstance(v, str):
            raise TreeError(f"{file}: node '{node_id}' {name} '{k}' does not name a node.")
        out[_label(k)] = v
    return out


def _label(value: Any) -> str:
    """Branch labels as text: YAML reads `yes:` as True and `0:` as 0; the trees mean words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse_tree(data: Any, file: Path) -> Tree:
    """Build a Tree from parsed YAML data and check its shape (not yet its facts and actions)."""
    if not isinstance(data, dict):
        raise TreeError(f"{file}: a runbook must be a mapping with id, title and nodes.")
    unknown = sorted(set(map(str, data)) - _TREE_FIELDS)
    if unknown:
        raise TreeError(f"{file}: unknown field '{unknown[0]}' (allowed: {', '.join(sorted(_TREE_FIELDS))}).")
    tree_id, title, raw_nodes = data.get("id"), data.get("title"), data.get("nodes")
    if not isinstance(tree_id, str) or not tree_id:
        raise TreeError(f"{file}: the runbook has no id.")
    if not isinstance(title, str) or not title:
        raise TreeError(f"{file}: runbook '{tree_id}' has no title.")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise TreeError(f"{file}: runbook '{tree_id}' has no nodes.")
    params = data.get("params") or []
    if not isinstance(params, list) or any(p not in PARAMS for p in params):
        raise TreeError(f"{file}: params must be a list of {', '.join(PARAMS)}.")
    nodes: dict[str, Node] = {}
    for index, raw in enumerate(raw_nodes):
        node = _parse_node(raw, file, index)
        if node.id in nodes:
            raise TreeError(f"{file}: node '{node.id}' is defined twice.")
        nodes[node.id] = node
    start = data.get("start") or next(iter(nodes))
    if start not in nodes:
        raise TreeError(f"{file}: start node '{start}' does not exist.")
    tree = Tree(
        id=tree_id, title=title, nodes=nodes, start=start, file=file, summary=str(data.get("summary") or ""),
        kind=str(data.get("kind") or "tree"), reviewed=_date(data.get("reviewed"), file, "reviewed"),
        next_review=_date(data.get("next_review"), file, "next_review"), params=list(params),
        symptom=str(data.get("symptom") or ""), severity=data.get("severity"), owner=data.get("owner"),
    )
    if tree.reviewed is None or tree.next_review is None:
        raise TreeError(f"{file}: runbook '{tree_id}' needs both reviewed and next_review dates.")
    rounds = data.get("max_rounds", DEFAULT_MAX_ROUNDS)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise TreeError(f"{file}: max_rounds must be a whole number of at least 1, not {rounds!r}.")
    tree.max_rounds = rounds
    tree.drills = _parse_drills(data.get("drills"), file)
    nodes.setdefault(ROUND_LIMIT_NODE, Node(
        ROUND_LIMIT_NODE, "escalate", role="engineering_lead",
        text="This walk came back to '{looped_at}' {rounds} times without getting further: stop going round "
             "and escalate, with this walk's evidence."))
    return tree


_DRILL_FIELDS = {"id", "text", "faults", "params", "answers", "during", "expect", "proposals"}
PROPOSAL_POLICIES = ("approve", "reject", "leave")


def _faults(raw: Any, file: Path, where: str) -> list[Fault]:
    """`[pause: {domain: adapter, key: cache}, broken-yaml: {file: adapters.yml}, restart]`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TreeError(f"{file}: {where}: faults must be a list.")
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(Fault(item))
        elif isinstance(item, dict) and len(item) == 1:
            (kind, args), = item.items()
            if args is not None and not isinstance(args, dict):
                raise TreeError(f"{file}: {where}: the arguments of fault '{kind}' are not a mapping.")
            out.append(Fault(str(kind), dict(args or {})))
        else:
            raise TreeError(f"{file}: {where}: a fault is a name or a one-key mapping `name: {{args}}`.")
    return out


def _parse_drills(raw: Any, file: Path) -> list[Drill]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TreeError(f"{file}: drills must be a list of scenarios.")
    drills: list[Drill] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise TreeError(f"{file}: drill #{index + 1} has no id.")
        where = f"drill '{item['id']}'"
        unknown = sorted(set(map(str, item)) - _DRILL_FIELDS)
        if unknown:
            raise TreeError(f"{file}: {where} has an unknown field '{unknown[0]}'.")
        if not isinstance(item.get("expect"), str):
            raise TreeError(f"{file}: {where} names no expect (the exit node its walk must reach).")
        answers: dict[str, list[str]] = {}
        raw_answers = item.get("answers") or {}
        if not isinstance(raw_answers, dict):
            raise TreeError(f"{file}: {where}: answers must map a node to a choice (or a list of choices).")
        for node, choice in raw_answers.items():
            choices = choice if isinstance(choice, list) else [choice]
            answers[str(node)] = [_label(c) for c in choices]
        raw_during = item.get("during") or {}
        if not isinstance(raw_during, dict):
            raise TreeError(f"{file}: {where}: during must map a node to faults.")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise TreeError(f"{file}: {where}: params must be a mapping.")
        proposals = str(item.get("proposals") or "approve")
        if proposals not in PROPOSAL_POLICIES:
            raise TreeError(f"{file}: {where}: proposals must be one of {', '.join(PROPOSAL_POLICIES)}.")
        drill = Drill(id=item["id"], expect=item["expect"], text=str(item.get("text") or ""),
                      faults=_faults(item.get("faults"), file, where),
                      params={str(k): str(v) for k, v in params.items()}, answers=answers,
                      during={str(n): _faults(f, file, f"{where} during '{n}'") for n, f in raw_during.items()},
                      proposals=proposals)
        if any(d.id == drill.id for d in drills):
            raise TreeError(f"{file}: drill '{drill.id}' is defined twice.")
        drills.append(drill)
    return drills


def _parse_node(raw: Any, file: Path, index: int) -> Node:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise TreeError(f"{file}: node #{index + 1} has no id.")
    node_id = raw["id"]
    unknown = sorted(set(map(str, raw)) - _NODE_FIELDS)
    if unknown:
        raise TreeError(f"{file}: node '{node_id}' has an unknown field '{unknown[0]}'.")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise TreeError(f"{file}: node '{node_id}' has kind '{kind}'; use one of {', '.join(KINDS)}.")
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        raise TreeError(f"{file}: node '{node_id}' has args that are not a mapping.")
    node = Node(
        id=node_id, kind=kind, text=str(raw.get("text") or ""), title=str(raw.get("title") or ""),
        fact=raw.get("fact"), args=dict(args),
        branches=_str_map(raw.get("branches"), file, node_id, "branch"),
        default=raw.get("default"), choices=_str_map(raw.get("choices"), file, node_id, "choice"),
        action=raw.get("action"), next=raw.get("next"), role=raw.get("role"), severity=raw.get("severity"),
        changes=str(raw.get("changes") or ""), where=str(raw.get("where") or ""),
        sets=raw.get("sets"), then=raw.get("then"),
        safe=_label(raw["safe"]) if raw.get("safe") is not None else None,
    )
    for name in ("default", "next", "then"):
        value = getattr(node, name)
        if value is not None and not isinstance(value, str):
            raise TreeError(f"{file}: node '{node_id}' {name} does not name a node.")
    if kind == "check" and not node.fact:
        raise TreeError(f"{file}: check node '{node_id}' names no fact.")
    if kind == "check" and not (node.branches or node.default or node.next):
        raise TreeError(f"{file}: check node '{node_id}' has no branches and no next node.")
    if kind == "question" and not node.choices:
        raise TreeError(f"{file}: question node '{node_id}' has no choices.")
    if (node.sets is not None or node.then is not None) and kind != "question":
        raise TreeError(f"{file}: node '{node_id}' is a {kind}; only a question takes sets or then.")
    if node.sets is not None:
        if node.sets not in SETTABLE:
            raise TreeError(f"{file}: node '{node_id}' sets '{node.sets}'; it can set {', '.join(SETTABLE)}.")
        from .escalation import SEVERITIES

        bad = [c for c in node.choices if c not in SEVERITIES]
        if bad:
            raise TreeError(f"{file}: node '{node_id}' sets the severity, but its choice '{bad[0]}' is not one of "
                            f"{', '.join(SEVERITIES)}.")
    if node.safe is not None and kind != "question":
        raise TreeError(f"{file}: node '{node_id}' is a {kind}; only a question names a safe choice.")
    if node.safe is not None and node.safe not in node.choices:
        raise TreeError(f"{file}: node '{node_id}' names '{node.safe}' its safe choice, but has no such choice.")
    if node.then is not None and not any(t.startswith(TREE_PREFIX) for t in node.choices.values()):
        raise TreeError(f"{file}: node '{node_id}' has then, but none of its choices opens another runbook.")
    if kind == "action" and not node.action:
        raise TreeError(f"{file}: action node '{node_id}' names no action.")
    if kind == "action" and not (node.branches or node.default or node.next):
        raise TreeError(f"{file}: action node '{node_id}' has no next node.")
    if kind == "done" and node.targets():
        raise TreeError(f"{file}: done node '{node_id}' must not lead anywhere.")
    if kind == "escalate" and not node.role:
        raise TreeError(f"{file}: escalate node '{node_id}' names no role.")
    return node


def check_structure(tree: Tree, *, facts: Iterable[str], actions: Iterable[str], trees: Iterable[str],
                    roles: Iterable[str] | None = None, faults: Iterable[str] | None = None,
                    changing: Iterable[str] | None = None) -> None:
    """Refuse a dangling branch, an unknown fact/action/role, an unreachable node, a loop
    with no exit, a drill naming an unknown fault or node, or (given the `changing` actions) a
    question offering a change before the safe choice; each refusal is one sentence naming the
    file and the node (or drill)."""
    facts, actions, trees = set(facts), set(actions), set(trees)
    roles = set(roles) if roles is not None else None
    file = tree.file
    for node in tree.nodes.values():
        if node.kind == "check" and node.fact not in facts:
            raise TreeError(f"{file}: node '{node.id}' uses the unknown fact '{node.fact}'.")
        if node.kind == "action" and node.action not in actions:
            raise TreeError(f"{file}: node '{node.id}' uses the unknown action '{node.action}'.")
        if node.kind == "escalate" and roles is not None and node.role not in roles:
            raise TreeError(f"{file}: node '{node.id}' escalates to the unknown role '{node.role}'.")
        for target in node.targets():
            if target.startswith(TREE_PREFIX):
                if target[len(TREE_PREFIX):] not in trees:
                    raise TreeError(f"{file}: node '{node.id}' jumps to the unknown runbook '{target}'.")
            elif target not in tree.nodes:
                raise TreeError(f"{file}: node '{node.id}' has a dangling branch to '{target}'.")
    for node in tree.nodes.values():
        if node.kind == "question":
            _check_safe_first(tree, node, set(changing) if changing is not None else None)
    reachable = _reach(tree, [tree.start], forward=True) | {ROUND_LIMIT_NODE}  # the walker's own way out
    for node_id in tree.nodes:
        if node_id not in reachable:
            raise TreeError(f"{file}: node '{node_id}' is unreachable from the start node '{tree.start}'.")
    if faults is not None:
        _check_drills(tree, set(faults), trees)
    exits = [n.id for n in tree.nodes.values()
             if n.terminal or any(t.startswith(TREE_PREFIX) for t in n.targets())]
    can_exit = _reach(tree, exits, forward=False)
    for node_id in tree.nodes:
        if node_id not in can_exit:
            raise TreeError(f"{file}: node '{node_id}' is in a loop with no exit (no path from it ends the walk).")


def _check_safe_first(tree: Tree, node: Node, changing: set[str] | None) -> None:
    """The safe choice comes first (see the module docstring)."""
    labels = list(node.choices)
    if node.safe is not None and labels[0] != node.safe:
        raise TreeError(f"{tree.file}: node '{node.id}' offers '{labels[0]}' first, but its safe choice is "
                        f"'{node.safe}'; put the safe choice first.")
    if changing is None or node.sets is not None:
        return

    def acts(label: str) -> bool:
        target = tree.nodes.get(node.choices[label])
        return target is not None and target.kind == "action" and target.action in changing

    if node.safe is not None and acts(node.safe):
        raise TreeError(f"{tree.file}: node '{node.id}' names '{node.safe}' its safe choice, but it leads to a "
                        "step that changes something.")
    calm = [label for label in labels if not acts(label)]
    if calm and acts(labels[0]):
        raise TreeError(f"{tree.file}: node '{node.id}' offers '{labels[0]}' (a step that changes something) "
                        f"before '{calm[0]}' (which changes nothing); the safe choice comes first.")


def _check_drills(tree: Tree, faults: set[str], trees: set[str]) -> None:
    def node_name(drill: Drill, name: str, what: str) -> None:
        other, sep, node = name.partition(":")
        if sep and other != tree.id:
            if other not in trees:
                raise TreeError(f"{tree.file}: drill '{drill.id}' {what} '{name}' names the unknown runbook '{other}'.")
        elif (node if sep else name) not in tree.nodes:
            raise TreeError(f"{tree.file}: drill '{drill.id}' {what} the unknown node '{name}'.")

    for drill in tree.drills:
        node_name(drill, drill.expect, "expects")
        for name in drill.answers:
            node_name(drill, name, "answers")
        for name in drill.during:
            node_name(drill, name, "injects during")
        for fault in [*drill.faults, *(f for fs in drill.during.values() for f in fs)]:
            if fault.kind not in faults:
                raise TreeError(f"{tree.file}: drill '{drill.id}' uses the unknown fault '{fault.kind}' "
                                f"(known: {', '.join(sorted(faults))}).")
        for params in (drill.params,):
            bad = sorted(set(params) - {*PARAMS, "target"})
            if bad:
                raise TreeError(f"{tree.file}: drill '{drill.id}' sets the unknown parameter '{bad[0]}'.")


def _reach(tree: Tree, roots: list[str], *, forward: bool) -> set[str]:
    edges: dict[str, set[str]] = {n: set() for n in tree.nodes}
    for node in tree.nodes.values():
        for target in node.targets():
            if target in tree.nodes:
                if forward:
                    edges[node.id].add(target)
                else:
                    edges[target].add(node.id)
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(edges[current] - seen)
    return seen
