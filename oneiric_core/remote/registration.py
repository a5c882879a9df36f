"""From accepted manifest entries to registered candidates, and what that changes.

A source's entries replace that source's previous set in one `replace_source_fields` call
(`remote:<name>`): nothing is ever registered twice, and an entry that left the manifest
leaves the registry. What serves is never yanked: the lifecycle keeps serving the instance it
built. On the host, every key whose winner the sync moved, or whose serving provider the
manifest dropped, becomes one swap proposal (source `remote-sync`) through the approvals
policy, exactly like an edit of settings/ (the settings watcher).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domains import Candidate, ComponentRef
from ..errors import OneiricError
from ..events import Event, Severity
from ..registry import CandidateFields, CandidateRegistry, SourceDiff
from ..store import StoreError

if TYPE_CHECKING:
    from ..ports import RegistrationEngine
    from .manifest import Accepted

PROPOSAL_SOURCE = "remote-sync"  # the `source` of proposals a remote sync makes


def candidate_rows(accepted: Sequence[Accepted], artifact_paths: Mapping[str, Path]) -> list[CandidateFields]:
    """The registry rows of accepted entries; an artifact's verified local path goes into
    the candidate's metadata (`artifact`: uri, sha256, path). Artifacts are data for the
    provider: nothing downloaded is ever imported."""
    rows: list[CandidateFields] = []
    for item in accepted:
        entry = item.entry
        metadata = entry.metadata
        if entry.artifact is not None:
            path = artifact_paths.get(entry.artifact.sha256)
            metadata = {**metadata, "artifact": {"uri": entry.artifact.uri, "sha256": entry.artifact.sha256,
                                                 "path": str(path) if path else None}}
        rows.append((item.domain, entry.key, entry.provider, entry.factory, entry.priority, entry.stack_level,
                     entry.settings, metadata))
    return rows


def preview(registry: CandidateRegistry, source: str, rows: Sequence[CandidateFields]) -> SourceDiff:
    """What `replace_source_fields(source, rows)` would change, changing nothing (the dry run)."""
    current = {c.ident: c for c in registry.all() if c.source == source}
    diff = SourceDiff()
    wanted: dict[tuple[Any, ...], CandidateFields] = {}
    for row in rows:
        wanted[(row[0], row[1], row[2], source)] = row
    for ident, (domain, key, provider, factory, priority, stack_level, settings, metadata) in wanted.items():
        cand = Candidate(domain, key, provider, factory, priority, stack_level, source, settings, metadata)
        old = current.get(ident)
        if old is None:
            diff.added.append(cand)
        elif (old.factory, old.priority, old.stack_level, old.settings, old.metadata) != \
                (factory, priority, stack_level, settings, metadata):
            diff.replaced.append(cand)
    diff.removed.extend(c for ident, c in current.items() if ident not in wanted)
    return diff


def labels(cands: Sequence[Candidate], limit: int | None = None) -> list[str]:
    out = [f"{c.domain.value}/{c.key} {c.provider}" for c in cands]
    return out if limit is None else out[:limit]


@dataclass
class Applied:
    diff: SourceDiff
    proposals: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # keys left serving with nothing to swap to, failures


class Registrar:
    """Applies a source's rows to an engine's registry and proposes the swaps that follow."""

    def __init__(self, engine: RegistrationEngine) -> None:
        self._engine = engine
        # Set by the engine once every winner was activated: before that nothing serves, and a
        # new winner is simply what activation starts.
        self.activated = False
        # The keys each remote source has candidates for (only this class registers them), so
        # a sync never scans the whole registry to find them.
        self._refs: dict[str, set[ComponentRef]] = {}

    def preview(self, source: str, rows: Sequence[CandidateFields]) -> SourceDiff:
        return preview(self._engine.registry, source, rows)

    def register(self, source: str, rows: Sequence[CandidateFields]) -> SourceDiff:
        """Make `source`'s candidates exactly `rows`, proposing nothing (loading the cache)."""
        diff = self._engine.registry.replace_source_fields(source, rows)
        self._refs[source] = {ComponentRef(r[0], r[1]) for r in rows}
        return diff

    async def apply(self, source: str, rows: Sequence[CandidateFields], *, why: str) -> Applied:
        engine = self._engine
        follow = engine.is_host and self.activated
        before: dict[ComponentRef, Candidate | None] = {}
        if follow:
            refs = self._refs.get(source, set()) | {ComponentRef(r[0], r[1]) for r in rows}
            winner = engine.resolver.winner
            before = {ref: winner(ref) for ref in refs}
        diff = self.register(source, rows)
        applied = Applied(diff)
        if not follow or not diff.changed:
            return applied
        removed = {c.ident for c in diff.removed}
        touched = {c.ref for c in (*diff.added, *diff.replaced, *diff.removed)}
        for ref in sorted(touched, key=str):
            await self._follow(ref, source, before.get(ref), removed, why, applied)
        return applied

    async def _follow(self, ref: ComponentRef, source: str, winner_before: Candidate | None,
                      removed: set[tuple[Any, ...]], why: str, applied: Applied) -> None:
        engine = self._engine
        target = engine.resolver.winner(ref)
        slot = engine.lifecycle.find_slot(ref)
        serving = slot.current.candidate if slot and slot.current else None
        heading = slot.pending if slot else None
        dropped = serving is not None and serving.ident in removed
        moved = _ident(winner_before) != _ident(target)
        if not (dropped or moved):
            return
        self._withdraw_superseded(ref, target, source)
        if target is None:
            if serving is not None:
                applied.notes.append(f"{ref}: {serving.provider} keeps serving; {source} no longer lists it "
                                     "and no other candidate is left to swap to")
            return
        if (serving is not None and serving.ident == target.ident) or \
                (heading is not None and heading.ident == target.ident) or self._already_proposed(ref, target):
            return
        if dropped and serving is not None:
            reason = f"{source} no longer lists {serving.provider}; {target.provider} wins ({_why(engine, ref)})"
        else:
            reason = f"{why}: {target.provider} now wins ({_why(engine, ref)})"
        try:
            record, _ = await engine.request_swap(ref.domain, ref.key, target.provider, to_source=target.source,
                                                  source=PROPOSAL_SOURCE, reason=reason, actor=source)
        except OneiricError as exc:
            applied.notes.append(f"{ref}: no swap to {target.provider} was proposed: {exc}")
            engine.emit(Event("remote-sync-error", f"{ref}: {reason}, but no swap was proposed: {exc}",
                              Severity.WARNING, ref.domain, ref.key, target.provider, source,
                              data={"reason": reason}))
            return
        assert record.id is not None  # a stored proposal
        applied.proposals.append(record.id)

    def _pending(self) -> list[Any]:
        try:
            return self._engine.approvals.pending()
        except StoreError as exc:
            self._engine.store_error = str(exc)
            return []

    def _already_proposed(self, ref: ComponentRef, target: Candidate) -> bool:
        return any((p.domain, p.key, p.to_provider, p.to_source) ==
                   (ref.domain.value, ref.key, target.provider, target.source) for p in self._pending())

    def _withdraw_superseded(self, ref: ComponentRef, target: Candidate | None, source: str) -> None:
        """An earlier remote-sync proposal for this key that no longer matches the winner is
        rejected as superseded (it waits for nobody)."""
        for p in self._pending():
            if (p.domain, p.key) != (ref.domain.value, ref.key) or p.source != PROPOSAL_SOURCE or p.decided_by:
                continue
            if target is None or (p.to_provider, p.to_source) != (target.provider, target.source):
                now = f"{target.provider} wins" if target else "nothing is left to swap to"
                with contextlib.suppress(OneiricError):
                    self._engine.reject(p.id, actor=PROPOSAL_SOURCE,
                                        comment=f"superseded: after a sync of {source}, {now}")


def _ident(cand: Candidate | None) -> tuple[Any, ...] | None:
    return cand.ident if cand is not None else None


def _why(engine: RegistrationEngine, ref: ComponentRef) -> str:
    try:
        ranked = engine.resolver.explain(ref.domain, ref.key).ranked
    except OneiricError:
        return "no candidate"
    return ranked[0].reason if ranked else "no candidate"


__all__ = ["Applied", "PROPOSAL_SOURCE", "Registrar", "candidate_rows", "labels", "preview"]
