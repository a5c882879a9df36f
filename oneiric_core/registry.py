"""CandidateRegistry: every registered way to serve every key, keyed so that nothing piles up.

The registry key is (domain, key, provider, source). Registering the same tuple again
replaces the candidate *in place* (it keeps its registration order), and
`replace_source` makes one source's set exactly what it is given, so a remote refresh
or a settings reload can never leave duplicates behind. Listeners hear which
(domain, key) pairs changed so the resolver recomputes only those.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .domains import Candidate, ComponentRef, Domain

Ident = tuple[Domain, str, str, str]
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
        wanted = {c.ident: c for c in candidates}
        for cand in wanted.values():
            if cand.source != source:
                raise ValueError(f"candidate {cand.label()} does not belong to source {source}")
        diff = SourceDiff()
        changed: set[ComponentRef] = set()
        with self._lock:
            for ref, bucket in list(self._by_ref.items()):
                for ident, old in list(bucket.items()):
                    if old.source == source and ident not in wanted:
                        del bucket[ident]
                        diff.removed.append(old)
                        changed.add(ref)
                if not bucket:
                    del self._by_ref[ref]
            for ident, cand in wanted.items():
                existing = self.get(ident)
                if existing is None:
                    diff.added.append(self._put(cand))
                    changed.add(cand.ref)
                elif _differs(existing, cand):
                    diff.replaced.append(self._put(cand))
                    changed.add(cand.ref)
            self._changed(changed)
        return diff

    def _put(self, cand: Candidate) -> Candidate:
        bucket = self._by_ref.setdefault(cand.ref, {})
        old = bucket.get(cand.ident)
        seq = old.seq if old is not None else next(self._seq)
        stored = dataclasses.replace(cand, seq=seq)
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


def _differs(a: Candidate, b: Candidate) -> bool:
    return (a.factory, a.priority, a.stack_level, a.settings, a.metadata) != (
        b.factory, b.priority, b.stack_level, b.settings, b.metadata,
    )
