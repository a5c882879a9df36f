"""The component tree: domain > key > candidates, marked by symbol and word.

Labels are updated in place (`set_label`) when a key changes; a key's candidate nodes are
rebuilt only when its set of candidates changes, so a busy engine never rebuilds the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import ComponentStatus
from oneiric_core.resolver import Explanation

from .. import format as fmt
from ..keys import vim_keys
from ..messages import RefHighlighted


@dataclass(frozen=True)
class NodeData:
    domain: Domain
    ref: ComponentRef | None = None
    provider: str | None = None
    source: str | None = None


def key_label(status: ComponentStatus) -> Text:
    text = Text()
    if status.misconfigured:
        text.append(f"{fmt.MISCONFIGURED[0]} ", style=fmt.MISCONFIGURED[2])
    text.append(status.ref.key, style="bold")
    serving = status.serving or status.winner or "-"
    text.append(f"  {serving}")
    marks: list[tuple[str, str]] = []
    if status.misconfigured:
        marks.append((f"{fmt.MISCONFIGURED[0]} {fmt.MISCONFIGURED[1]}", fmt.MISCONFIGURED[2]))
    sym, word, style = fmt.ACTIVITY.get(status.activity, ("", "", ""))
    if word:
        marks.append((f"{sym} {word}", style))
    sym, word, style = fmt.STATE.get(status.state, ("", status.state.upper(), ""))
    if word:
        marks.append((f"{sym} {word}", style))
    if status.state == "ready":
        sym, word, style = fmt.HEALTH.get(status.health, fmt.HEALTH["unknown"])
        marks.append((f"{sym} {word}", style))
    if status.inflight:
        marks.append((f"{status.inflight} in flight", "cyan"))
    for mark, style in marks:
        text.append("  ")
        text.append(mark, style=style)
    return text


def candidate_label(provider: str, source: str, winner: bool, serving: bool, reason: str) -> Text:
    sym, word = fmt.WINNER if winner else fmt.SHADOWED
    text = Text()
    text.append(f"{sym} ", style="bold" if winner else "dim")
    text.append(provider, style="bold" if winner else "")
    text.append(f" ({source})", style="dim")
    text.append(f"  {word}", style="" if winner else "dim")
    if serving:
        text.append("  serving", style="cyan")
    return text


def domain_label(domain: Domain, statuses: list[ComponentStatus]) -> Text:
    text = Text(domain.plural, style="bold")
    counts = [f"{len(statuses)} key" + ("" if len(statuses) == 1 else "s")]
    for label, hit in (
        ("paused", lambda s: s.activity in ("paused", "draining", "drained")),
        ("failed", lambda s: s.state == "failed" or s.health == "failed"),
        ("misconfigured", lambda s: bool(s.misconfigured)),
    ):
        n = sum(1 for s in statuses if hit(s))
        if n:
            counts.append(f"{n} {label}")
    text.append(f"  ({', '.join(counts)})", style="dim")
    return text


class ComponentTree(Tree[NodeData]):
    BINDINGS = [
        *vim_keys("tree"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__("components", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self._domains: dict[Domain, TreeNode[NodeData]] = {}
        self._keys: dict[ComponentRef, TreeNode[NodeData]] = {}
        self._candidates: dict[ComponentRef, tuple] = {}
        self._labels: dict[ComponentRef, Text] = {}

    def action_scroll_home(self) -> None:
        self.cursor_line = 0

    def action_scroll_end(self) -> None:
        self.cursor_line = self.last_line

    def populate(self, statuses: list[ComponentStatus], explain: dict[ComponentRef, Explanation]) -> None:
        """Create or update every node; safe to call again with fresh data."""
        by_domain: dict[Domain, list[ComponentStatus]] = {}
        for status in statuses:
            by_domain.setdefault(status.ref.domain, []).append(status)
        for domain in Domain:
            rows = by_domain.get(domain, [])
            if not rows:
                continue
            node = self._domains.get(domain)
            if node is None:
                node = self._domains[domain] = self.root.add(domain_label(domain, rows), NodeData(domain), expand=True)
            else:
                node.set_label(domain_label(domain, rows))
            for status in rows:
                self._update_key(node, status, explain.get(status.ref))

    def update_keys(self, statuses: list[ComponentStatus], explain: dict[ComponentRef, Explanation],
                    all_statuses: list[ComponentStatus]) -> None:
        for status in statuses:
            domain_node = self._domains.get(status.ref.domain)
            if domain_node is None:
                self.populate(all_statuses, explain)
                return
            self._update_key(domain_node, status, explain.get(status.ref))
        touched = {s.ref.domain for s in statuses}
        for domain in touched:
            node = self._domains.get(domain)
            if node is not None:
                node.set_label(domain_label(domain, [s for s in all_statuses if s.ref.domain == domain]))

    def _update_key(self, domain_node: TreeNode[NodeData], status: ComponentStatus,
                    explanation: Explanation | None) -> None:
        ref = status.ref
        label = key_label(status)
        node = self._keys.get(ref)
        if node is None:
            node = self._keys[ref] = domain_node.add(label, NodeData(ref.domain, ref), expand=False)
        elif self._labels.get(ref) != label:  # most health samples change nothing shown here
            node.set_label(label)
        self._labels[ref] = label
        ranked = explanation.ranked if explanation else []
        shape = tuple((r.candidate.ident, r.rank, status.serving == r.candidate.provider
                       and status.serving_source == r.candidate.source) for r in ranked)
        before = self._candidates.get(ref)
        if before == shape:
            return
        self._candidates[ref] = shape
        children = list(node.children)
        same_candidates = before is not None and [s[:2] for s in before] == [s[:2] for s in shape]
        if same_candidates and len(children) == len(ranked):
            # Only which one serves changed (an activation or a swap): relabel in place.
            for child, r, (_, _, serving), (_, _, was) in zip(children, ranked, shape, before):
                if serving != was:
                    c = r.candidate
                    child.set_label(candidate_label(c.provider, c.source, r.winner, serving, r.reason))
            return
        node.remove_children()
        for r, (_, _, serving) in zip(ranked, shape):
            c = r.candidate
            node.add_leaf(candidate_label(c.provider, c.source, r.winner, serving, r.reason),
                          NodeData(ref.domain, ref, c.provider, c.source))

    def select_ref(self, ref: ComponentRef) -> None:
        node = self._keys.get(ref)
        if node is not None:
            self.move_cursor(node)

    @property
    def current(self) -> NodeData | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeData]) -> None:
        data = event.node.data
        self.post_message(RefHighlighted(data.ref if data else None, data.provider if data else None))
