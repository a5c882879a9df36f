"""CandidateRegistry: every registered way to serve every key, keyed so that nothing piles up.

The registry key is (domain, key, provider, source). Registering the same tuple again
replaces the candidate *in place* (it keeps its registration order), and
`replace_source` makes one source's set exactly what it is given, so a remote refresh
or a settings reload can never leave duplicates behind. Listeners hear which
(domain, key) pairs changed so the resolver recomputes only those.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .bulk import gc_paused
from .domains import Candidate, ComponentRef, Domain, new_candidate

Ident = tuple[Domain, str, str, str]
# A candidate as (domain, key, provider, factory, priority, stack_level, settings, metadata):
# what `replace_source_fields` takes, so that a caller does not build a Candidate the
# registry would only copy to give it its registration number.
CandidateFields = tuple[Domain, str, str, str, int, int, dict[str, Any], dict[str, Any]]
ChangeListener = Callable[[set[ComponentRef]], None]


@dataclass
class SourceDiff:
    """What `replace_source` changed; remote sync dry-runs print this."""

    added: list[Candidate] = field(default_factory=list)
    replaced: list[Candidate] = field(default_factory=list)
    removed: list[Candidate] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


class CandidateRegistry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_ref: dict[ComponentRef, dict[Ident, Candidate]] = {}
        self._seq = itertools.count(1)
        self._listeners: list[ChangeListener] = []
        self.version = 0

    # -- changes ---------------------------------------------------------------------------
    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def register(self, candidate: Candidate) -> Candidate:
        return self.register_many([candidate])[0]

    def register_many(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        stored: list[Candidate] = []
        changed: set[ComponentRef] = set()
        with self._lock:
            for cand in candidates:
                stored.append(self._put(cand))
                changed.add(cand.ref)
            self._changed(changed)
        return stored

    def remove(self, ident: Ident) -> Candidate | None:
        with self._lock:
            ref = ComponentRef(ident[0], ident[1])
            bucket = self._by_ref.get(ref)
            if not bucket or ident not in bucket:
                return None
            gone = bucket.pop(ident)
            if not bucket:
                del self._by_ref[ref]
            self._changed({ref})
            return gone

    def replace_source(self, source: str, candidates: Iterable[Candidate]) -> SourceDiff:
        """Make `source`'s registered set exactly `candidates` (each must carry that source)."""
        rows = []
        for cand in candidates:
            if cand.source != source:
                raise ValueError(f"candidate {cand.label()} does not belong to source {source}")
            rows.append((cand.domain, cand.key, cand.provider, cand.factory, cand.priority, cand.stack_level,
                         cand.settings, cand.metadata))
        return self.replace_source_fields(source, rows)

    def replace_source_fields(self, source: str, rows: Iterable[CandidateFields]) -> SourceDiff:
        """`replace_source` for candidates given as field tuples (see `CandidateFields`).

        A settings load registers 10,000 candidates through here: each is built once, with
        its registration number, and only when it is new or changed (a reload that changes
        nothing builds none); one pass over the registry finds what went away, and the
        listeners hear all the changed keys in one call."""
        with gc_paused():  # thousands of candidates, no cycles: see bulk.py
            return self._replace_source_fields(source, rows)

    def _replace_source_fields(self, source: str, rows: Iterable[CandidateFields]) -> SourceDiff:
        wanted: dict[Ident, CandidateFields] = {}
        for row in rows:
            wanted[(row[0], row[1], row[2], source)] = row
        diff = SourceDiff()
        changed: set[ComponentRef] = set()
        last_changed: ComponentRef | None = None
        with self._lock:
            by_ref = self._by_ref
            for ref, bucket in list(by_ref.items()):
                stale = [ident for ident, old in bucket.items() if old.source == source and ident not in wanted]
                for ident in stale:
                    diff.removed.append(bucket.pop(ident))
                if stale:
                    changed.add(ref)
                    if not bucket:
                        del by_ref[ref]
            # (domain, key) -> (ref, bucket): a tuple hashes in C, a ComponentRef in Python.
            slots: dict[tuple[Domain, str], tuple[ComponentRef, dict[Ident, Candidate]]] = {}
            for ident, (domain, key, provider, factory, priority, stack_level, settings, metadata) in wanted.items():
                slot = slots.get((domain, key))
                if slot is None:
                    ref = ComponentRef(domain, key)
                    found = by_ref.get(ref)
                    if found is None:
                        found = by_ref[ref] = {}
                    slot = slots[(domain, key)] = (ref, found)
                ref, bucket = slot
                existing = bucket.get(ident)
                if existing is None:
                    stored = bucket[ident] = new_candidate(domain, key, provider, factory, priority, stack_level,
                                                           source, settings, metadata, next(self._seq))
                    diff.added.append(stored)
                elif (existing.factory, existing.priority, existing.stack_level, existing.settings,
                      existing.metadata) != (factory, priority, stack_level, settings, metadata):
                    stored = bucket[ident] = new_candidate(domain, key, provider, factory, priority, stack_level,
                                                           source, settings, metadata, existing.seq)
                    diff.replaced.append(stored)
                else:
                    continue
                if not changed or ref is not last_changed:
                    changed.add(ref)
                    last_changed = ref
            self._changed(changed)
        return diff

    def _put(self, cand: Candidate) -> Candidate:
        bucket = self._by_ref.setdefault(cand.ref, {})
        old = bucket.get(cand.ident)
        stored = _with_seq(cand, old.seq if old is not None else next(self._seq))
        bucket[cand.ident] = stored
        return stored

    def _changed(self, refs: set[ComponentRef]) -> None:
        if not refs:
            return
        self.version += 1
        for listener in list(self._listeners):
            listener(refs)

    # -- reads -----------------------------------------------------------------------------
    def get(self, ident: Ident) -> Candidate | None:
        bucket = self._by_ref.get(ComponentRef(ident[0], ident[1]))
        return bucket.get(ident) if bucket else None

    def candidates(self, ref: ComponentRef) -> list[Candidate]:
        """The candidates for one key, in registration order."""
        with self._lock:
            bucket = self._by_ref.get(ref)
            return sorted(bucket.values(), key=lambda c: c.seq) if bucket else []

    def bucket(self, ref: ComponentRef) -> list[Candidate]:
        """The candidates for one key in no particular order (the resolver sorts them itself)."""
        with self._lock:
            bucket = self._by_ref.get(ref)
            return list(bucket.values()) if bucket else []

    def refs(self, domain: Domain | None = None) -> list[ComponentRef]:
        with self._lock:
            refs = [r for r in self._by_ref if domain is None or r.domain == domain]
        return sorted(refs, key=lambda r: (list(Domain).index(r.domain), r.key))

    def all(self) -> list[Candidate]:
        with self._lock:
            return sorted((c for b in self._by_ref.values() for c in b.values()), key=lambda c: c.seq)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._by_ref.values())


def _with_seq(cand: Candidate, seq: int) -> Candidate:
    """`cand` with registration number `seq`: itself when it already has it, else a copy
    (`dataclasses.replace` costs several times as much)."""
    if cand.seq == seq:
        return cand
    return new_candidate(cand.domain, cand.key, cand.provider, cand.factory, cand.priority, cand.stack_level,
                         cand.source, cand.settings, cand.metadata, seq)
