"""Resolution precedence and `explain()`.

Precedence, highest first (README "How a provider wins"):
  1. the explicit selection in settings/<domain>s.yml (if that provider is registered;
     if it is not, the key is *misconfigured* and ranking picks a fallback),
  2. higher effective stack_level (a source is lifted by `stack_order`),
  3. higher priority,
  4. later registration.

Winners are recomputed when the registry, the selections or the stack order change, so
`resolve()` on the hot path is two dict lookups, never a sort.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .domains import Candidate, ComponentRef, Domain
from .errors import NotFound
from .registry import CandidateRegistry

STACK_LIFT_STEP = 100


class Rung(enum.StrEnum):
    """The precedence rung that decided a candidate's place."""

    ONLY = "only candidate"
    SELECTION = "selection"
    STACK_LEVEL = "stack_level"
    PRIORITY = "priority"
    REGISTRATION = "registration order"


@dataclass(frozen=True)
class StackOrder:
    """Source lifts from `stack_order` (app.yml) or ONEIRIC_STACK_ORDER.

    Tokens are listed highest first. A bare token at position i of n lifts the matching
    sources by (n - i) * 100; `name:value` sets the lift explicitly. Tokens may be
    patterns (`remote:*`), and `remote` matches every remote source.
    """

    tokens: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> StackOrder:
        cleaned = [e.strip() for e in entries if e and e.strip()]
        tokens: list[tuple[str, int]] = []
        for index, entry in enumerate(cleaned):
            name, sep, value = entry.rpartition(":")
            if sep and _is_int(value):
                tokens.append((name, int(value)))
            else:
                tokens.append((entry, (len(cleaned) - index) * STACK_LIFT_STEP))
        return cls(tuple(tokens))

    def lift(self, source: str) -> tuple[int, str | None]:
        return _lift(self.tokens, source)


@functools.lru_cache(maxsize=4096)
def _lift(tokens: tuple[tuple[str, int], ...], source: str) -> tuple[int, str | None]:
    """The first matching token's lift; cached because sources are few and candidates many."""
    for pattern, value in tokens:
        if pattern == source or fnmatch.fnmatchcase(source, pattern) or (
            pattern == "remote" and source.startswith("remote:")
        ):
            return value, pattern
    return 0, None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    candidate: Candidate
    rank: int
    selected: bool
    effective_stack_level: int
    lift: int
    lift_token: str | None
    rung: Rung
    reason: str

    @property
    def winner(self) -> bool:
        return self.rank == 1

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "rank": self.rank,
            "provider": c.provider,
            "source": c.source,
            "factory": c.factory,
            "priority": c.priority,
            "stack_level": c.stack_level,
            "effective_stack_level": self.effective_stack_level,
            "registration": c.seq,
            "selected": self.selected,
            "winner": self.winner,
            "rung": self.rung.value,
            "reason": self.reason,
        }


_DOMAIN_ORDER = {domain: index for index, domain in enumerate(Domain)}


class KeySummary(NamedTuple):
    """A key at a glance: see `Resolver.summary`."""

    winner: Candidate | None
    selection: str | None
    misconfigured: str | None
    candidates: int


@dataclass(frozen=True, slots=True)
class Explanation:
    ref: ComponentRef
    selection: str | None
    selection_file: str
    misconfigured: str | None
    ranked: list[RankedCandidate] = field(default_factory=list)

    @property
    def winner(self) -> Candidate | None:
        return self.ranked[0].candidate if self.ranked else None

    @property
    def shadowed(self) -> list[Candidate]:
        return [r.candidate for r in self.ranked[1:]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.ref.domain.value,
            "key": self.ref.key,
            "winner": self.winner.provider if self.winner else None,
            "winner_source": self.winner.source if self.winner else None,
            "selection": self.selection,
            "selection_file": self.selection_file,
            "misconfigured": self.misconfigured,
            "candidates": [r.to_dict() for r in self.ranked],
        }


class Resolver:
    def __init__(
        self,
        registry: CandidateRegistry,
        *,
        selections: Mapping[Domain, Mapping[str, str]] | None = None,
        stack_order: StackOrder | None = None,
        settings_dir_label: str = "settings",
    ) -> None:
        self._registry = registry
        self._selections: dict[Domain, dict[str, str]] = {d: {} for d in Domain}
        self._stack = stack_order or StackOrder()
        self._label = settings_dir_label
        # winners[domain][key] -> Candidate: the hot-path table.
        # Keyed by the Domain members; a plain str of a domain's value finds the same entry (a
        # StrEnum member hashes and compares as its value), so resolve() takes either.
        self._winners: dict[str, dict[str, Candidate]] = {d: {} for d in Domain}
        # ranked rows per key (cheap tuples); the worded Explanation is built on demand.
        self._rows: dict[ComponentRef, list[_Row]] = {}
        self._explained: dict[ComponentRef, Explanation] = {}
        # refs() in order, kept until a recompute: sorting 12,500 keys took 12-16 ms, and the
        # host, its heartbeat and the console ask for them many times while activating.
        self._refs: tuple[ComponentRef, ...] | None = None
        # Resolutions per domain; telemetry reads it. Keyed like `_winners` so the hot path
        # hashes one key type.
        self.resolutions: dict[str, int] = dict.fromkeys(Domain, 0)
        if selections:
            for domain, table in selections.items():
                self._selections[Domain.parse(domain)] = dict(table)
        registry.add_listener(self._recompute)
        self._recompute(set(registry.refs()))

    # -- inputs ---------------------------------------------------------------------------
    def set_selections(self, selections: Mapping[Domain, Mapping[str, str]]) -> set[ComponentRef]:
        """Replace the selections; returns the refs whose selection changed."""
        changed: set[ComponentRef] = set()
        for domain in Domain:
            new = dict(selections.get(domain, {}))
            old = self._selections[domain]
            for key in set(old) | set(new):
                if old.get(key) != new.get(key):
                    changed.add(ComponentRef(domain, key))
            self._selections[domain] = new
        self._recompute(changed)
        return changed

    def set_stack_order(self, stack_order: StackOrder) -> None:
        if stack_order == self._stack:
            return  # a reload with the same order re-ranks nothing
        self._stack = stack_order
        self._recompute(set(self._rows) | set(self._registry.refs()))

    def selection(self, ref: ComponentRef) -> str | None:
        return self._selections[ref.domain].get(ref.key)

    def winner(self, ref: ComponentRef) -> Candidate | None:
        """The current winner or None, without counting a resolution: for diffing what a
        settings change did (the settings watcher), which is not traffic."""
        return self._winners[ref.domain].get(ref.key)

    def selections(self) -> dict[Domain, dict[str, str]]:
        return {d: dict(t) for d, t in self._selections.items()}

    # -- the hot path ----------------------------------------------------------------------
    def resolve(self, domain: Domain | str, key: str) -> Candidate:
        try:
            winner = self._winners[domain][key]
        except KeyError:
            raise self._not_found(domain, key) from None
        self.resolutions[domain] += 1
        return winner

    def _not_found(self, domain: Domain | str, key: str) -> NotFound:
        domain = Domain.parse(domain)
        known = sorted(self._winners[domain])
        hint = f" Known {domain.value} keys: {', '.join(known)}." if known else ""
        return NotFound(f"No candidate is registered for {domain.value}/{key}.{hint}")

    # -- explain ---------------------------------------------------------------------------
    def explain(self, domain: Domain | str, key: str) -> Explanation:
        ref = ComponentRef(Domain.parse(domain), key)
        explanation = self._explained.get(ref)
        if explanation is not None:
            return explanation
        rows = self._rows.get(ref)
        if rows is None:
            if self.selection(ref):
                return self._explain(ref, [])  # selected but nothing registered at all
            raise self._not_found(ref.domain, key)
        explanation = self._explained[ref] = self._explain(ref, rows)
        return explanation

    def summary(self, ref: ComponentRef) -> KeySummary:
        """What a status line needs (winner, selection, misconfiguration, how many candidates)
        without wording every candidate's reason: `components()` asks this of every key, and
        full explanations for thousands of keys were most of a large console's first frame."""
        rows = self._rows.get(ref)
        if rows is None:
            if not self.selection(ref):
                raise self._not_found(ref.domain, ref.key)
            rows = []
        selection = self.selection(ref)
        misconfigured = None
        if selection is not None and not any(r.selected for r in rows):
            misconfigured = self.explain(ref.domain, ref.key).misconfigured  # rare: word it once
        return KeySummary(rows[0].candidate if rows else None, selection, misconfigured, len(rows))

    def refs(self) -> list[ComponentRef]:
        """Every key that has candidates or a selection (a new list: the caller may change it)."""
        if self._refs is None:
            refs = set(self._rows)
            for domain, table in self._selections.items():
                refs.update(ComponentRef(domain, k) for k in table)
            self._refs = tuple(sorted(refs, key=lambda r: (_DOMAIN_ORDER[r.domain], r.key)))
        return list(self._refs)

    # -- ranking ---------------------------------------------------------------------------
    def _recompute(self, refs: set[ComponentRef]) -> None:
        """Rank `refs` again; every change of the rows or the selections comes through here."""
        self._refs = None
        lifts: dict[str, tuple[int, str | None]] = {}  # per source, for this pass
        for ref in refs:
            self._explained.pop(ref, None)
            rows = self._rank(ref, lifts)
            if rows:
                self._rows[ref] = rows
                self._winners[ref.domain][ref.key] = rows[0].candidate
            else:
                self._rows.pop(ref, None)
                self._winners[ref.domain].pop(ref.key, None)

    def _rank(self, ref: ComponentRef, lifts: dict[str, tuple[int, str | None]]) -> list[_Row]:
        selection = self._selections[ref.domain].get(ref.key)
        rows = []
        for cand in self._registry.bucket(ref):
            lift = lifts.get(cand.source)
            if lift is None:
                lift = lifts[cand.source] = self._stack.lift(cand.source)
            rows.append(_new_row((cand, selection is not None and cand.provider == selection,
                                  cand.stack_level + lift[0], lift[0], lift[1], cand.priority, cand.seq)))
        if len(rows) > 1:
            rows.sort(key=_PRECEDENCE, reverse=True)
        return rows

    def _explain(self, ref: ComponentRef, rows: list[_Row]) -> Explanation:
        selection = self.selection(ref)
        file_label = f"{self._label}/{ref.domain.settings_file}"
        misconfigured = None
        if selection is not None and not any(r.selected for r in rows):
            misconfigured = (
                f"{file_label} selects '{selection}' for {ref}, but no candidate with that provider "
                "is registered"
            )
        ranked: list[RankedCandidate] = []
        for index, row in enumerate(rows):
            if index == 0:
                other = rows[1] if len(rows) > 1 else None
                rung, reason = _winner_reason(row, other, file_label)
                if misconfigured:
                    reason = f"fallback: selection '{selection}' is not registered; {reason}"
            else:
                rung, reason = _loser_reason(row, rows[index - 1], selection, file_label)
            ranked.append(RankedCandidate(row.candidate, index + 1, row.selected, row.effective,
                                          row.lift, row.token, rung, reason))
        return Explanation(ref, selection, file_label, misconfigured, ranked)


class _Row(NamedTuple):
    candidate: Candidate
    selected: bool
    effective: int
    lift: int
    token: str | None
    # Copies of candidate.priority and candidate.seq, so that the precedence order is a
    # C-level itemgetter (rungs 1-4 of the module docstring, highest first when reversed).
    priority: int
    seq: int


_PRECEDENCE = operator.itemgetter(1, 2, 5, 6)  # selected, effective stack_level, priority, seq
# `_Row(...)` goes through a Python-level __new__; this is the same tuple built in C.
_new_row = functools.partial(tuple.__new__, _Row)


def _stack_text(row: _Row) -> str:
    if row.lift:
        return f"{row.effective} ({row.candidate.stack_level} + {row.lift} from stack_order '{row.token}')"
    return str(row.effective)


def _winner_reason(row: _Row, other: _Row | None, file_label: str) -> tuple[Rung, str]:
    cand = row.candidate
    if other is None:
        if row.selected:
            return Rung.SELECTION, f"selected in {file_label} (only candidate)"
        return Rung.ONLY, "only candidate"
    o_cand = other.candidate
    if row.selected and not other.selected:
        return Rung.SELECTION, f"selected in {file_label}"
    prefix = "selected in " + file_label + "; " if row.selected else ""
    if row.effective != other.effective:
        return Rung.STACK_LEVEL, (
            f"{prefix}stack_level {_stack_text(row)} > {other.effective} ({o_cand.provider})"
        )
    if cand.priority != o_cand.priority:
        return Rung.PRIORITY, f"{prefix}priority {cand.priority} > {o_cand.priority} ({o_cand.provider})"
    return Rung.REGISTRATION, (
        f"{prefix}ties with {o_cand.provider} on stack_level and priority; registered later "
        f"(#{cand.seq} > #{o_cand.seq}), and the later one wins"
    )


def _loser_reason(row: _Row, above: _Row, selection: str | None, file_label: str) -> tuple[Rung, str]:
    cand, a_cand = row.candidate, above.candidate
    if above.selected and not row.selected:
        return Rung.SELECTION, f"shadowed: {file_label} selects '{selection}'"
    if row.effective != above.effective:
        return Rung.STACK_LEVEL, f"shadowed: stack_level {row.effective} < {above.effective} ({a_cand.provider})"
    if cand.priority != a_cand.priority:
        return Rung.PRIORITY, f"shadowed: priority {cand.priority} < {a_cand.priority} ({a_cand.provider})"
    return Rung.REGISTRATION, (
        f"shadowed: ties with {a_cand.provider} on stack_level and priority; {a_cand.provider} "
        f"registered later (#{a_cand.seq} > #{cand.seq}) and wins"
    )
