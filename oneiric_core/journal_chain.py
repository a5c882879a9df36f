"""Checking the journal's hash chain: is every row still what was appended, in order, with
nothing missing, nothing added and nothing cut off past what the host published?

The store chains each row to the one before it (journal_hash.py says what a hash covers,
store.py how the anchor and the published head are kept). `verify` walks the rows from the
anchor in id order, inside one read snapshot, and names the **first** problem:

* edited     a row's content no longer matches its hash, or a row was rewritten with a
             fresh hash that the row after it does not chain to;
* deleted    rows are missing in the middle: the next row chains to something that is not
             there, or the ids jump (a later append re-linked over the hole);
* inserted   a row carries no hash (written around the store), sits before the anchor, or
             was slipped in: the rows after it were renumbered, or the next row chains past it;
* reordered  two rows swapped places (each hashes right with the other's id);
* rewritten  the row at the published head is there but carries another hash: everything
             up to it was recomputed;
* truncated  the journal ends before the head the host last published.

What a hash chain cannot show: rows appended with a correct hash by someone who can write
the file (there is no secret in the chain), or a rewrite of the whole tail after the last
head that someone outside copied (status --json, the telemetry gauge). Those need the
writer restricted (the host alone writes the store) or the head kept elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .journal_hash import row_hash
from .store import ChainLink, StateStore

PAGE_ROWS = 2000
_SHIFT_TRIES = 16  # how far back a renumbered row is looked for


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first thing wrong with the chain: its kind, the row it names and why, in words."""

    kind: str  # edited | deleted | inserted | reordered | rewritten | truncated
    row_id: int
    detail: str  # completes "journal tampered: "


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What `verify` found: the rows it walked, the ends of the chain, and its first problem."""

    events: int  # rows walked
    first_id: int | None
    last_id: int | None
    anchor: ChainLink
    head: ChainLink  # the last row walked (the anchor when there is none)
    published: ChainLink | None  # the head the host last published
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def sentence(self) -> str:
        if self.problem is not None:
            return f"journal tampered: {self.problem.detail}"
        head = f"head #{self.head.id} sha256:{self.head.hash}"
        if not self.events:
            return f"journal intact: no events after the anchor, {head}"
        noun = "event" if self.events == 1 else "events"
        return f"journal intact: {self.events} {noun} from #{self.first_id} to #{self.last_id}, {head}"

    def to_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {"kind": self.problem.kind, "row_id": self.problem.row_id, "detail": self.problem.detail}
        return {
            "intact": self.intact, "message": self.sentence(), "events": self.events,
            "first_id": self.first_id, "last_id": self.last_id, "anchor": self.anchor.to_dict(),
            "head": self.head.to_dict(), "published_head": self.published.to_dict() if self.published else None,
            "problem": problem,
        }


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    rest: tuple[Any, ...]  # ts .. data
    prev_hash: str | None
    hash: str | None

    def hash_as(self, row_id: int) -> str | None:
        """The hash this row's content would have at `row_id` (None without a prev_hash)."""
        return None if self.prev_hash is None else row_hash(self.prev_hash, row_id, self.rest)


def _rows(store: StateStore, after_id: int) -> Iterator[_Row]:
    while True:
        page = store.chain_rows(after_id, PAGE_ROWS)
        for raw in page:
            yield _Row(raw[0], raw[1:-2], raw[-2], raw[-1])
        if len(page) < PAGE_ROWS:
            return
        after_id = page[-1][0]


def _span(first: int, last: int) -> str:
    return f"row #{first} was" if first == last else f"rows #{first} to #{last} were"


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime(" at %Y-%m-%d %H:%M:%S", time.localtime(at))


class _Walk:
    """The walk's state: the link each row must chain to, and the one before that."""

    def __init__(self, anchor: ChainLink, sealed_through: int, published: ChainLink | None) -> None:
        self.anchor = anchor
        self.sealed_through = sealed_through
        self.published = published
        self.prev: ChainLink = anchor
        self.prev_is_row = False
        self.before_prev: str | None = None  # the hash of the row before `prev`

    def check(self, row: _Row, after: _Row | None) -> ChainProblem | None:
        """The problem `row` shows (`after` is the row that follows it, for swaps)."""
        prev = self.prev
        if row.hash is None or row.prev_hash is None:
            return ChainProblem("inserted", row.id, f"row #{row.id} was inserted: it carries no hash, so it "
                                "was written around the journal's append")
        if row.id <= self.anchor.id:
            return ChainProblem("inserted", row.id, f"row #{row.id} was inserted: it sits before the anchor "
                                f"#{self.anchor.id}, where the journal was pruned")
        if row.hash_as(row.id) != row.hash:
            return self._not_its_hash(row, after)
        gap = row.id > prev.id + 1 and row.id > self.sealed_through
        if row.prev_hash != prev.hash:
            if row.id > prev.id + 1:
                return ChainProblem("deleted", prev.id + 1, f"{_span(prev.id + 1, row.id - 1)} deleted: row "
                                    f"#{row.id} chains to a row that is no longer there")
            if not self.prev_is_row:
                return ChainProblem("edited", row.id, f"row #{row.id} was edited: it does not chain to the "
                                    f"anchor #{prev.id} sha256:{prev.hash}")
            if row.prev_hash == self.before_prev:
                return ChainProblem("inserted", prev.id, f"row #{prev.id} was inserted: row #{row.id} chains "
                                    "to the row before it")
            return ChainProblem("edited", prev.id, f"row #{prev.id} was edited: its hash was recomputed, and "
                                f"row #{row.id} still chains to the original")
        if gap:
            return ChainProblem("deleted", prev.id + 1, f"{_span(prev.id + 1, row.id - 1)} deleted: the ids "
                                f"jump from #{prev.id} to #{row.id} (a later append chained over the hole)")
        head = self.published
        if head is not None and row.id == head.id and row.hash != head.hash:
            return ChainProblem("rewritten", row.id, f"row #{row.id} does not carry the hash the host "
                                f"published for it{_when(head.at)} (sha256:{head.hash}): the journal was "
                                "rewritten up to there")
        return None

    def _not_its_hash(self, row: _Row, after: _Row | None) -> ChainProblem:
        if (after is not None and row.hash_as(after.id) == row.hash
                and after.hash is not None and after.hash_as(row.id) == after.hash):
            return ChainProblem("reordered", row.id, f"rows #{row.id} and #{after.id} were reordered: each "
                                "one's content hashes right only at the other's place")
        for shift in range(1, _SHIFT_TRIES + 1):
            if row.hash_as(row.id - shift) == row.hash:
                first = row.id - shift
                return ChainProblem("inserted", first, f"{_span(first, row.id - 1)} inserted: row #{row.id} "
                                    f"was #{first} when it was written, and the rows from it on were renumbered")
        return ChainProblem("edited", row.id, f"row #{row.id} was edited: its content no longer matches "
                            "its hash")

    def advance(self, row: _Row) -> None:
        self.before_prev = self.prev.hash
        self.prev = ChainLink(row.id, row.hash or "")
        self.prev_is_row = True


def verify(store: StateStore) -> ChainVerdict:
    """Walk the journal's chain from the anchor and name its first problem, if any."""
    with store.read_snapshot():
        anchor, sealed_through, published = store.chain_state()
        walk = _Walk(anchor, sealed_through, published)
        count, first_id, problem = 0, None, None
        rows = _rows(store, -(1 << 63))  # every row: one below the anchor is a finding too
        row = next(rows, None)
        while row is not None and problem is None:
            after = next(rows, None)
            problem = walk.check(row, after)
            if problem is None:
                walk.advance(row)
                count += 1
                first_id = row.id if first_id is None else first_id
            row = after
    last = walk.prev
    if problem is None and published is not None and published.id > last.id:
        problem = ChainProblem("truncated", last.id + 1, f"the journal was truncated: it ends at #{last.id}, "
                               f"but the host published head #{published.id} sha256:{published.hash}"
                               f"{_when(published.at)}")
    return ChainVerdict(count, first_id, last.id if walk.prev_is_row else None, anchor, last, published, problem)


__all__ = ["ChainProblem", "ChainVerdict", "verify"]
