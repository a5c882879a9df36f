"""The component tree: domain > key > candidates, marked by symbol and word.

Labels are updated in place (`set_label`) when a key changes; a key's candidate nodes are
rebuilt only when its set of candidates changes, so a busy engine never rebuilds the tree.

A key's candidates are added when the key is first expanded, not before: with thousands of
keys, building every candidate node (and every key's explanation) up front would be most
of the console's start-up, for nodes nobody has opened yet. For the same reason a domain
with more than EXPAND_AT_MOST keys starts collapsed (its label still counts its keys, paused,
failed and misconfigured ones) and gets its key nodes when first opened.

`/` narrows the keys shown (`apply_filter`): a key is kept when every word is in its line or
its domain/key name (pane_filter.row_matches); the others' nodes are removed, their status
and their domain's counts kept, and come back when the words are cleared. Domains stay, each
open when it has a key kept, closed when it has none.

Key, provider and source names come from settings and remote manifests: every label puts
them in through oneiric_core.text (`one_line`), never as markup or raw control characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.engine import ComponentStatus
from oneiric_core.resolver import Explanation
from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from ..messages import RefHighlighted
from ..pane_filter import filter_subtitle, normalized, row_matches


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
    text.append(one_line(status.ref.key), style="bold")
    serving = status.serving or status.winner or "-"
    text.append(f"  {one_line(serving)}")
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
    if status.proposal:
        sym, word, style = fmt.PROPOSAL
        marks.append((f"{sym} {word} #{status.proposal['id']} -> {one_line(status.proposal['to'])}", style))
    for mark, style in marks:
        text.append("  ")
        text.append(mark, style=style)
    return text


def candidate_label(provider: str, source: str, winner: bool, serving: bool, reason: str) -> Text:
    sym, word = fmt.WINNER if winner else fmt.SHADOWED
    text = Text()
    text.append(f"{sym} ", style="bold" if winner else "dim")
    text.append(one_line(provider), style="bold" if winner else "")
    text.append(f" ({one_line(source)})", style="dim")
    text.append(f"  {word}", style="" if winner else "dim")
    if serving:
        text.append("  serving", style="cyan")
    return text


def status_marks(status: ComponentStatus) -> tuple[int, int, int]:
    """What a key adds to its domain's counts: (paused, failed, misconfigured), each 0 or 1."""
    return (int(status.activity in ("paused", "draining", "drained")),
            int(status.state == "failed" or status.health == "failed"), int(bool(status.misconfigured)))


def domain_label(domain: Domain, counts: tuple[int, int, int, int]) -> Text:
    """`counts`: (keys, paused, failed, misconfigured) of the domain."""
    keys, *marks = counts
    text = Text(domain.plural, style="bold")
    words = [f"{keys} key" + ("" if keys == 1 else "s")]
    for label, n in zip(("paused", "failed", "misconfigured"), marks, strict=True):
        if n:
            words.append(f"{n} {label}")
    text.append(f"  ({', '.join(words)})", style="dim")
    return text


def count_marks(statuses: list[ComponentStatus]) -> tuple[int, int, int, int]:
    paused = failed = misconfigured = 0
    for status in statuses:
        p, f, m = status_marks(status)
        paused, failed, misconfigured = paused + p, failed + f, misconfigured + m
    return (len(statuses), paused, failed, misconfigured)


EXPAND_AT_MOST = 100  # keys in a domain shown open at start; larger domains open on demand
Explain = Callable[[ComponentRef], "Explanation | None"]
"""How the tree asks for a key's ranked candidates, only when it shows them."""


class ComponentTree(Tree[NodeData]):
    BINDINGS = [
        *vim_keys("tree"),
        # Tree's own keys, given ids: remappable, and the help lists them (keys.py).
        Binding("enter", "select_cursor", "Open or close", show=False, id="tree.select"),
        Binding("space", "toggle_node", "Open or close", show=False, id="tree.toggle"),
    ]

    def __init__(self, explain: Explain, **kwargs) -> None:
        # Set before Tree.__init__, whose reactive watchers already call the methods below.
        self._icon_width = cell_len(self.ICON_NODE)
        self._deferring = False
        self._invalidated = False
        super().__init__("components", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self._explain = explain
        self._domains: dict[Domain, TreeNode[NodeData]] = {}
        self._built: set[Domain] = set()  # domains whose key nodes exist
        self._keys: dict[ComponentRef, TreeNode[NodeData]] = {}
        self._statuses: dict[ComponentRef, ComponentStatus] = {}
        self._candidates: dict[ComponentRef, tuple] = {}
        self._labels: dict[ComponentRef, Text] = {}
        # Per domain: (keys, paused, failed, misconfigured), kept as keys change, so a batch
        # relabels a domain at the cost of its changed keys, not of every key in it.
        self._counts: dict[Domain, tuple[int, int, int, int]] = {}
        self.filter_text = ""

    def get_label_width(self, node: TreeNode[NodeData]) -> int:
        """Same answer as Tree's, without rendering the label: the tree measures every line
        whenever it changes, and rendering thousands of labels to count cells was slow."""
        label = node.label
        width = label.cell_len if isinstance(label, Text) else len(label)
        return width + (self._icon_width if node.allow_expand else 0)

    def _invalidate(self) -> None:
        """Tree clears its line cache and asks for a layout on every node added; while
        `populate` adds thousands of keys, do that once at the end instead. (`_invalidate`
        is Textual's private hook; textual is pinned, and tests cover the tree's content.)"""
        if self._deferring:
            self._invalidated = True
        else:
            super()._invalidate()

    def action_scroll_home(self) -> None:
        self.cursor_line = 0

    def action_scroll_end(self) -> None:
        self.cursor_line = self.last_line

    def populate(self, statuses: list[ComponentStatus]) -> None:
        """Create or update every node (and drop the keys that are gone); safe to call
        again with fresh data."""
        by_domain: dict[Domain, list[ComponentStatus]] = {}
        for status in statuses:
            by_domain.setdefault(status.ref.domain, []).append(status)
        present = {s.ref for s in statuses}
        self._deferring, self._invalidated = True, False
        try:
            for ref in [r for r in self._statuses if r not in present]:
                self._drop_key(ref)
            for domain in Domain:
                rows = by_domain.get(domain, [])
                if not rows:
                    continue
                self._counts[domain] = count_marks(rows)
                node = self._domains.get(domain)
                if node is None:
                    small = len(rows) <= EXPAND_AT_MOST
                    node = self._domains[domain] = self.root.add(
                        domain_label(domain, self._counts[domain]), NodeData(domain), expand=small)
                    if small:
                        self._built.add(domain)
                else:
                    node.set_label(domain_label(domain, self._counts[domain]))
                for status in rows:
                    self._update_key(node, status, count=False)
        finally:
            self._deferring = False
            if self._invalidated:
                self._invalidate()

    def update_keys(self, statuses: list[ComponentStatus],
                    everything: Callable[[], list[ComponentStatus]]) -> None:
        """Update these keys' nodes and their domains' counts: the cost of the keys given.
        A key of a domain the tree does not have yet rebuilds it from `everything()`."""
        touched: dict[Domain, tuple[int, int, int, int]] = {}
        self._deferring, self._invalidated = True, False
        try:
            for status in statuses:
                domain = status.ref.domain
                domain_node = self._domains.get(domain)
                if domain_node is None:
                    self.populate(everything())
                    return
                touched.setdefault(domain, self._counts.get(domain, (0, 0, 0, 0)))
                self._update_key(domain_node, status)
        finally:
            self._deferring = False
            if self._invalidated:
                self._invalidate()
        self._relabel(touched)

    def retain(self, refs: set[ComponentRef]) -> None:
        """Drop the keys not in `refs` (gone from the registry)."""
        gone = [r for r in self._statuses if r not in refs]
        touched = {ref.domain: self._counts.get(ref.domain, (0, 0, 0, 0)) for ref in gone}
        for ref in gone:
            self._count(ref.domain, self._statuses[ref], -1)
            self._drop_key(ref)
        self._relabel(touched)

    def _relabel(self, before: dict[Domain, tuple[int, int, int, int]]) -> None:
        for domain, was in before.items():
            counts = self._counts.get(domain)
            node = self._domains.get(domain)
            if node is not None and counts is not None and counts != was:  # a relabel redraws the tree
                node.set_label(domain_label(domain, counts))

    def _count(self, domain: Domain, status: ComponentStatus, sign: int, key: int = 1) -> None:
        keys, *marks = self._counts.get(domain, (0, 0, 0, 0))
        p, f, m = (sign * x for x in status_marks(status))
        self._counts[domain] = (keys + sign * key, marks[0] + p, marks[1] + f, marks[2] + m)

    def _drop_key(self, ref: ComponentRef) -> None:
        self._statuses.pop(ref, None)
        self._labels.pop(ref, None)
        self._candidates.pop(ref, None)
        node = self._keys.pop(ref, None)
        if node is not None:
            node.remove()

    def _update_key(self, domain_node: TreeNode[NodeData], status: ComponentStatus, *, count: bool = True) -> None:
        ref = status.ref
        before = self._statuses.get(ref)
        self._statuses[ref] = status
        if count:
            if before is not None:
                self._count(ref.domain, before, -1, key=0)
            self._count(ref.domain, status, +1, key=0 if before is not None else 1)
        if ref.domain not in self._built:
            return  # drawn when the domain is first opened
        label = key_label(status)
        node = self._keys.get(ref)
        if self.filter_text and not self._kept(ref, label):
            self._drop_node(ref)
            return
        if node is None:
            node = self._keys[ref] = domain_node.add(label, NodeData(ref.domain, ref), expand=False)
        elif self._labels.get(ref) != label:  # most health samples change nothing shown here
            node.set_label(label)
        self._labels[ref] = label
        if ref in self._candidates:  # its candidates are on screen (or were): keep them current
            self._sync_candidates(node, status)

    def _kept(self, ref: ComponentRef, label: Text) -> bool:
        """Whether the filter keeps this key (no filter: every key)."""
        return not self.filter_text or row_matches(self.filter_text, (str(ref), label.plain))

    def _drop_node(self, ref: ComponentRef) -> None:
        """Remove a key's node, keeping what it counts (the filter left it out)."""
        self._labels.pop(ref, None)
        self._candidates.pop(ref, None)
        node = self._keys.pop(ref, None)
        if node is not None:
            node.remove()

    def apply_filter(self, text: str) -> None:
        """Show only the keys whose line or name holds every word of `text`; "" shows them all
        (a large domain closed again, as at start). The cursor goes to the first key kept."""
        self.filter_text = normalized(text)
        self._deferring, self._invalidated = True, False
        try:
            for domain, node in self._domains.items():
                for ref in [r for r in self._keys if r.domain == domain]:
                    self._drop_node(ref)
                node.remove_children()
                statuses = [s for s in self._statuses.values() if s.ref.domain == domain]
                if self.filter_text or len(statuses) <= EXPAND_AT_MOST:
                    self._built.add(domain)
                    for status in statuses:
                        self._update_key(node, status, count=False)
                else:
                    self._built.discard(domain)
                if any(ref.domain == domain for ref in self._keys):
                    node.expand()
                else:
                    node.collapse()
        finally:
            self._deferring = False
            self._invalidate()
        self.border_subtitle = filter_subtitle(self.filter_text)
        first = next(iter(self._keys.values()), None)
        if first is not None:
            self.call_after_refresh(self.move_cursor, first)
        else:
            self.cursor_line = 0

    def _build_domain(self, domain: Domain) -> None:
        """Add a collapsed domain's key nodes, in the order the engine lists the keys."""
        node = self._domains.get(domain)
        if node is None or domain in self._built:
            return
        self._built.add(domain)
        self._deferring, self._invalidated = True, False
        try:
            for status in [s for s in self._statuses.values() if s.ref.domain == domain]:
                self._update_key(node, status, count=False)  # counted already
        finally:
            self._deferring = False
            if self._invalidated:
                self._invalidate()

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        data = event.node.data
        if data is not None and data.ref is None:
            self._build_domain(data.domain)
        elif data is not None and data.ref is not None and data.provider is None:
            status = self._statuses.get(data.ref)
            if status is not None:
                self._sync_candidates(event.node, status)

    def _sync_candidates(self, node: TreeNode[NodeData], status: ComponentStatus) -> None:
        ref = status.ref
        explanation = self._explain(ref)
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
            for child, r, (_, _, serving), (_, _, was) in zip(children, ranked, shape, before or (), strict=True):
                if serving != was:
                    c = r.candidate
                    child.set_label(candidate_label(c.provider, c.source, r.winner, serving, r.reason))
            return
        node.remove_children()
        for r, (_, _, serving) in zip(ranked, shape, strict=True):
            c = r.candidate
            node.add_leaf(candidate_label(c.provider, c.source, r.winner, serving, r.reason),
                          NodeData(ref.domain, ref, c.provider, c.source))

    def expand_ref(self, ref: ComponentRef) -> None:
        """Open a key to show its candidates (what `enter` does on it)."""
        node = self._keys.get(ref)
        if node is not None:
            node.expand()

    def select_start(self) -> None:
        """Open on the first key, or on the first domain when that one starts collapsed."""
        first = next(iter(self._domains.values()), None)
        if first is None:
            return
        keys = list(first.children) if first.data is not None and first.data.domain in self._built else []
        self.move_cursor(keys[0] if keys else first)

    def select_ref(self, ref: ComponentRef) -> None:
        if ref.domain not in self._built and ref.domain in self._domains:
            self._build_domain(ref.domain)
            self._domains[ref.domain].expand()
            node = self._keys.get(ref)
            if node is not None:
                self.call_after_refresh(self.move_cursor, node)  # once the new lines exist
            return
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
