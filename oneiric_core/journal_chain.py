"""Checking the journal's hash chains: is every row still what was appended, in order, with
nothing missing, nothing added and nothing cut off past what each node's host published?

The store chains each row to the one before it **of its node** (journal_hash.py says what a
hash covers, format 2 the node too; rows from before schema 13 keep the one global chain they
were written in, format 1; store/journal.py keeps the anchors and published heads). Ids stay
one sequence over every node. `verify` walks the rows from the anchor in id order, inside one
read snapshot, following each node's chain, and names the **first** problem, with the node
whose chain breaks where that is known:

* edited     a row's content no longer matches its hash, or a row was rewritten with a
             fresh hash that the row after it does not chain to;
* deleted    rows are missing in the middle: the next row chains to something that is not
             there, or the ids jump (a later append re-linked over the hole);
* inserted   a row carries no hash (written around the store), sits before the anchor, or
             was slipped in: the rows after it were renumbered, or the next row chains past it;
* reordered  two rows swapped places (each hashes right with the other's id);
* rewritten  the row at the published head is there but carries another hash: everything
             up to it was recomputed;
* moved      a row's node was changed: its content hashes right only as another node's;
* truncated  a node's rows end before the head its host last published.

What a hash chain cannot show: rows appended with a correct hash by someone who can write
the file (there is no secret in the chain), or a rewrite of the whole tail after the last
head that someone outside copied (status --json, the telemetry gauge). Those need the
writer restricted (the host alone writes the store) or the head kept elsewhere.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .journal_hash import node_row_hash, row_hash
from .store import ChainLink, StateStore

PAGE_ROWS = 2000
_SHIFT_TRIES = 16  # how far back a renumbered row is looked for
_RECENT_HASHES = 10_000  # rows remembered to tell a moved row (its old node's chain points at it)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first thing wrong with the chains: its kind, the row it names and why, in words,
    and the node whose chain breaks (None where the row is gone and its node with it)."""

    kind: str  # edited | deleted | inserted | reordered | moved | rewritten | truncated
    row_id: int
    detail: str  # completes "journal tampered: "
    node: str | None = None


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What `verify` found: the rows it walked, the ends of the chains, and its first problem."""

    events: int  # rows walked
    first_id: int | None
    last_id: int | None
    anchor: ChainLink
    head: ChainLink  # the last row walked (the anchor when there is none)
    published: ChainLink | None  # the head this store's host (or node) last published
    problem: ChainProblem | None
    nodes: dict[str, ChainLink] = field(default_factory=dict)  # each node's last row walked

    @property
    def intact(self) -> bool:
        return self.problem is None

    def sentence(self) -> str:
        if self.problem is not None:
            where = f" on node {self.problem.node}" if self.problem.node is not None else ""
            return f"journal tampered{where}: {self.problem.detail}"
        head = f"head #{self.head.id} sha256:{self.head.hash}"
        if not self.events:
            return f"journal intact: no events after the anchor, {head}"
        noun = "event" if self.events == 1 else "events"
        over = f" over {len(self.nodes)} nodes' chains" if len(self.nodes) > 1 else ""
        return f"journal intact: {self.events} {noun} from #{self.first_id} to #{self.last_id}{over}, {head}"

    def to_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {"kind": self.problem.kind, "row_id": self.problem.row_id, "detail": self.problem.detail,
                       "node": self.problem.node}
        return {
            "intact": self.intact, "message": self.sentence(), "events": self.events,
            "first_id": self.first_id, "last_id": self.last_id, "anchor": self.anchor.to_dict(),
            "head": self.head.to_dict(), "published_head": self.published.to_dict() if self.published else None,
            "nodes": {node: link.to_dict() for node, link in sorted(self.nodes.items())},
            "problem": problem,
        }


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    rest: tuple[Any, ...]  # ts .. data
    prev_hash: str | None
    hash: str | None
    node: str | None
    per_node: bool  # past the store's per-node start: hashed as format 2, with its node

    def hash_as(self, row_id: int, node: str | None = None) -> str | None:
        """The hash this row's content would have at `row_id` (as `node`'s row; None without
        a prev_hash)."""
        if self.prev_hash is None:
            return None
        if self.per_node:
            return node_row_hash(self.prev_hash, row_id, self.rest, self.node if node is None else node)
        return row_hash(self.prev_hash, row_id, self.rest)


def _rows(store: StateStore, after_id: int, node_start: int) -> Iterator[_Row]:
    while True:
        page = store.chain_rows(after_id, PAGE_ROWS)
        for raw in page:
            yield _Row(raw[0], raw[1:-3], raw[-3], raw[-2], raw[-1], raw[0] > node_start)
        if len(page) < PAGE_ROWS:
            return
        after_id = page[-1][0]


def _span(first: int, last: int) -> str:
    return f"row #{first} was" if first == last else f"rows #{first} to #{last} were"


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime(" at %Y-%m-%d %H:%M:%S", time.localtime(at))


class _Walk:
    """One chain's walk: the link each row must chain to, and the one before that. `node` is
    None for the global chain of the rows from before the per-node start."""

    def __init__(self, anchor: ChainLink, sealed_through: int, published: ChainLink | None,
                 node: str | None = None, start: str = "anchor") -> None:
        self.anchor = anchor
        self.sealed_through = sealed_through
        self.published = published
        self.node = node
        self.start = start  # what the chain's first row chains to, in words
        self.prev: ChainLink = anchor
        self.prev_is_row = False
        self.before_prev: str | None = None  # the hash of the row before `prev`

    def _problem(self, kind: str, row_id: int, detail: str) -> ChainProblem:
        return ChainProblem(kind, row_id, detail, self.node or None)

    def check(self, row: _Row, after: _Row | None, last_id: int, others: set[str],
              recent: OrderedDict[str, tuple[int, str | None]]) -> ChainProblem | None:
        """The problem `row` shows: `after` is the row that follows it (for swaps), `last_id`
        the row walked before it on any chain, `others` the other nodes, `recent` the hashes
        of the rows walked last (id, node)."""
        prev = self.prev
        if row.hash is None or row.prev_hash is None:
            return self._problem("inserted", row.id, f"row #{row.id} was inserted: it carries no hash, so it "
                                 "was written around the journal's append")
        if row.hash_as(row.id) != row.hash:
            return self._not_its_hash(row, after, others)
        gap = row.id > last_id + 1 and row.id > self.sealed_through
        if row.prev_hash != prev.hash:
            if row.id > last_id + 1:
                return ChainProblem("deleted", last_id + 1, f"{_span(last_id + 1, row.id - 1)} deleted: row "
                                    f"#{row.id} chains to a row that is no longer there",
                                    (self.node or None) if prev.id == last_id or not self.prev_is_row else None)
            moved = recent.get(row.prev_hash)
            if moved is not None and moved[1] != self.node:
                return self._problem("moved", moved[0], f"row #{moved[0]} was moved from node {self.node} to "
                                     f"node {moved[1]}: row #{row.id} of node {self.node} still chains to it")
            if not self.prev_is_row:
                return self._problem("edited", row.id, f"row #{row.id} was edited: it does not chain to the "
                                     f"{self.start} #{prev.id} sha256:{prev.hash}")
            if row.prev_hash == self.before_prev:
                return self._problem("inserted", prev.id, f"row #{prev.id} was inserted: row #{row.id} chains "
                                     "to the row before it")
            return self._problem("edited", prev.id, f"row #{prev.id} was edited: its hash was recomputed, and "
                                 f"row #{row.id} still chains to the original")
        if gap:
            return ChainProblem("deleted", last_id + 1, f"{_span(last_id + 1, row.id - 1)} deleted: the ids "
                                f"jump from #{last_id} to #{row.id} (a later append chained over the hole)")
        head = self.published
        if head is not None and row.id == head.id and row.hash != head.hash:
            return self._problem("rewritten", row.id, f"row #{row.id} does not carry the hash the host "
                                 f"published for it{_when(head.at)} (sha256:{head.hash}): the journal was "
                                 "rewritten up to there")
        return None

    def _not_its_hash(self, row: _Row, after: _Row | None, others: set[str]) -> ChainProblem:
        if (after is not None and after.node == row.node and row.hash_as(after.id) == row.hash
                and after.hash is not None and after.hash_as(row.id) == after.hash):
            return self._problem("reordered", row.id, f"rows #{row.id} and #{after.id} were reordered: each "
                                 "one's content hashes right only at the other's place")
        if row.per_node:
            for other in sorted(others - {str(row.node)}):
                if row.hash_as(row.id, other) == row.hash:
                    return ChainProblem("moved", row.id, f"row #{row.id} was moved from node {other} to node "
                                        f"{row.node}: its content hashes right only as node {other}'s", other)
        for shift in range(1, _SHIFT_TRIES + 1):
            if row.hash_as(row.id - shift) == row.hash:
                first = row.id - shift
                return self._problem("inserted", first, f"{_span(first, row.id - 1)} inserted: row #{row.id} "
                                     f"was #{first} when it was written, and the rows from it on were renumbered")
        return self._problem("edited", row.id, f"row #{row.id} was edited: its content no longer matches "
                             "its hash")

    def advance(self, row: _Row) -> None:
        self.before_prev = self.prev.hash
        self.prev = ChainLink(row.id, row.hash or "")
        self.prev_is_row = True


def verify(store: StateStore) -> ChainVerdict:
    """Walk the journal's chains from the anchor and name their first problem, if any."""
    with store.read_snapshot():
        state = store.chain_state()
        anchor, start = state.anchor, state.node_start
        legacy = _Walk(anchor, state.sealed_through, state.published)
        walks: dict[str, _Walk] = {}
        others = set(state.node_anchors) | set(state.node_heads)
        recent: OrderedDict[str, tuple[int, str | None]] = OrderedDict()
        count, first_id, problem, last_id = 0, None, None, anchor.id
        rows = _rows(store, -(1 << 63), start.id)  # every row: one below the anchor is a finding too
        row = next(rows, None)
        while row is not None and problem is None:
            after = next(rows, None)
            walk = legacy
            if row.per_node:
                node = str(row.node) if row.node is not None else ""
                others.add(node)
                walk = walks.get(node) or walks.setdefault(node, _Walk(
                    state.node_anchors.get(node, start), state.sealed_through, state.node_heads.get(node), node,
                    "anchor" if node in state.node_anchors else "node chains' start"))
            if row.id <= anchor.id:
                problem = ChainProblem("inserted", row.id, f"row #{row.id} was inserted: it sits before the "
                                       f"anchor #{anchor.id}, where the journal was pruned", walk.node or None)
            else:
                problem = walk.check(row, after, last_id, others, recent)
            if problem is None:
                walk.advance(row)
                recent[row.hash or ""] = (row.id, walk.node)
                if len(recent) > _RECENT_HASHES:
                    recent.popitem(last=False)
                count += 1
                first_id = row.id if first_id is None else first_id
                last_id = row.id
            row = after
    if problem is None:
        problem = _truncated(legacy, walks, state.node_anchors, state.node_heads, start)
    last = max((w.prev for w in (legacy, *walks.values()) if w.prev_is_row), key=lambda link: link.id,
               default=anchor)
    own = store.published_head()
    return ChainVerdict(count, first_id, last.id if count else None, anchor, last, own, problem,
                        {node: w.prev for node, w in walks.items()})


def _truncated(legacy: _Walk, walks: dict[str, _Walk], anchors: dict[str, ChainLink],
               heads: dict[str, ChainLink], start: ChainLink) -> ChainProblem | None:
    """A chain that ends before the head its host published: the rows at its end are gone."""
    published = legacy.published
    if published is not None and published.id > legacy.prev.id:
        return ChainProblem("truncated", legacy.prev.id + 1, f"the journal was truncated: it ends at "
                            f"#{legacy.prev.id}, but the host published head #{published.id} "
                            f"sha256:{published.hash}{_when(published.at)}")
    for node, head in sorted(heads.items()):
        walk = walks.get(node)
        end = walk.prev if walk is not None else anchors.get(node, start)
        if head.id > end.id:
            return ChainProblem("truncated", end.id + 1, f"the journal was truncated: node {node}'s rows end "
                                f"at #{end.id}, but its host published head #{head.id} sha256:{head.hash}"
                                f"{_when(head.at)}", node)
    return None


__all__ = ["ChainProblem", "ChainVerdict", "verify"]
