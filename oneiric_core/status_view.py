"""The status view: what every front door shows of each key, here or from the host's snapshots.

Why a service of its own: `components()` and the history views answer the same question in
two kinds of process. In the host they read the live slots and health tracks; in any other
process (a CLI command, a client console) they read the snapshots the host keeps in the
store, with the host's pending proposals beside them. That rule, and the client's copy of
the stored health it rebuilds tracks from, is one job; the Engine composes it
(`Engine.status_view`) and keeps `components()`, `health_track()`, `component_history()` and
`candidate_records()` as thin delegating methods. What it needs of the engine is named by
`ports.StatusEngine`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .candidate_record import SWAP_OUTCOME_KINDS, CandidateRecord
from .candidate_record import WINDOW_S as HISTORY_WINDOW_S
from .candidate_record import records as journal_records
from .component_history import MARKER_KINDS, ComponentHistory, track_from_snapshot
from .component_history import build as build_history
from .domains import ComponentRef, Domain
from .errors import NotFound
from .health import HealthTrack
from .lifecycle import LifecycleState, SwapResult
from .store import HealthSnapshot, StoreError

if TYPE_CHECKING:
    from .ports import StatusEngine


@dataclass
class ComponentStatus:
    """One key as every front door shows it: what should serve, what serves, how it is doing."""

    ref: ComponentRef
    winner: str | None
    winner_source: str | None
    selection: str | None
    misconfigured: str | None
    candidates: int
    shadowed: int
    serving: str | None
    serving_source: str | None
    state: str
    inflight: int
    activity: str
    activity_note: str | None
    activity_actor: str | None
    health: str
    latency_ms: float | None
    health_message: str
    health_checked_at: float | None
    last_error: str | None
    # The last swap: in the host the live SwapResult itself (worded as a dict only when read:
    # 12,500 copies held by the console were ~5 MB), elsewhere the dict the host stored.
    swap: SwapResult | dict[str, Any] | None
    # The newest pending proposal for this key ({id, from, to, source, requested_by, reason,
    # created_at}): while it waits, `winner` already shows what settings ask for and
    # `serving` what still serves, so every front door can say why the two differ.
    proposal: dict[str, Any] | None = None

    @property
    def last_swap(self) -> dict[str, Any] | None:
        """The last swap as the front doors show it ({outcome, from, to, health...})."""
        swap = self.swap
        return swap.to_dict() if isinstance(swap, SwapResult) else swap

    def to_dict(self) -> dict[str, Any]:
        """The `status --json` shape. Built field by field, not with dataclasses.asdict, whose
        recursive deep copy took 0.2 s at 10,000 components (0.6 s with a host's swap records).
        The two dict fields are copied one level deep: their nested values are plain JSON data
        that nothing edits in place."""
        out: dict[str, Any] = {"domain": self.ref.domain.value, "key": self.ref.key}
        for name in _STATUS_FIELDS:
            out[name] = getattr(self, name)
        swap = self.last_swap
        out["last_swap"] = None if swap is None else dict(swap)
        out["proposal"] = None if self.proposal is None else dict(self.proposal)
        return out


_STATUS_FIELDS = tuple(f.name for f in dataclasses.fields(ComponentStatus) if f.name not in ("ref", "swap", "proposal"))


class StatusView:
    """Each key's status and history, from the live engine in the host, else from the store."""

    def __init__(self, engine: StatusEngine) -> None:
        self._engine = engine
        # A client's copy of the host's stored health (read by components()), and the tracks
        # rebuilt from it on demand (health_track): TREND, CHANGED and the history view.
        self._stored_health: dict[tuple[str, str], HealthSnapshot] = {}
        self._stored_tracks: dict[ComponentRef, tuple[HealthSnapshot, HealthTrack]] = {}

    def components(self, refs: list[ComponentRef] | None = None) -> list[ComponentStatus]:
        """Status of every key (or of `refs`), from this process when it is the host, else from
        the snapshots the host keeps in the store."""
        engine = self._engine
        _, alive = engine.host() if not engine.is_host else (None, False)
        live_remote = alive and not engine.is_host
        snaps = {(s.domain, s.key): s for s in engine.store.all_lifecycle()} if live_remote else {}
        healths = {} if engine.is_host else {(h.domain, h.key): h for h in engine.store.all_health()}
        self._stored_health = healths
        proposals = self._pending_by_key()
        out = []
        for ref in engine.resolver.refs() if refs is None else refs:
            try:
                exp = engine.resolver.summary(ref)
            except NotFound:
                continue
            winner = exp.winner
            act = engine.activity.get(ref)
            slot = engine.lifecycle.find_slot(ref)
            track = engine.health.track(ref)
            if engine.is_host:
                serving = slot.current.candidate if slot and slot.current else None
                state = slot.state.value if slot else LifecycleState.INACTIVE.value
                serving_p, serving_s = (serving.provider, serving.source) if serving else (None, None)
                inflight = slot.inflight if slot else 0
                last_error = slot.last_error if slot else None
                last_swap: SwapResult | dict[str, Any] | None = slot.last_swap if slot else None
            else:
                snap = snaps.get((ref.domain.value, ref.key))
                state = snap.state if snap else LifecycleState.INACTIVE.value
                serving_p, serving_s = (snap.provider, snap.source) if snap else (None, None)
                inflight = snap.inflight if snap else 0
                last_error = snap.last_error if snap else None
                last_swap = snap.last_swap if snap else None
            if track is not None:
                health = (track.status.value, track.latency_ms, track.message, track.checked_at)
            elif (h := healths.get((ref.domain.value, ref.key))) is not None:
                health = (h.status, h.latency_ms, h.message, h.checked_at)
            else:
                health = ("unknown", None, "", None)
            out.append(ComponentStatus(
                ref, winner.provider if winner else None, winner.source if winner else None,
                exp.selection, exp.misconfigured, exp.candidates, max(0, exp.candidates - 1),
                serving_p, serving_s, state, inflight, act.state, act.note, act.actor,
                health[0], health[1], health[2], health[3], last_error, last_swap,
                proposal=proposals.get((ref.domain.value, ref.key)),
            ))
        return out

    def _pending_by_key(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The newest undecided, unexpired proposal per key, from the store (so clients see
        the host's proposals too). Read-only: expiring them is the host's job."""
        engine = self._engine
        try:
            pending = engine.store.proposals(status="pending", limit=10_000)
        except StoreError as exc:
            engine.store_error = str(exc)
            return {}
        now = time.time()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for p in pending:  # oldest first, so the newest wins
            if p.expires_at is None or p.expires_at > now:
                out[(p.domain, p.key)] = {
                    "id": p.id, "from": p.from_provider, "to": p.to_provider, "source": p.source,
                    "requested_by": p.requested_by, "reason": p.reason, "created_at": p.created_at,
                }
        return out

    def serving_elsewhere(self, ref: ComponentRef) -> str | None:
        """What serves `ref` as far as a process that is not the host can tell: the live
        host's snapshot, else what a host would start (the resolver's winner)."""
        engine = self._engine
        _, alive = engine.host()
        if alive:
            snap = engine.store.get_lifecycle(ref.domain, ref.key)
            return snap.provider if snap else None
        winner = engine.resolver.winner(ref)
        return winner.provider if winner else None

    # -- history: what the console's history view and swap picker read -----------------------
    def health_track(self, ref: ComponentRef) -> HealthTrack | None:
        """`ref`'s health track: this process's own as the host; in another process, the one
        the host stored, as of the last components() (client consoles' TREND and CHANGED)."""
        engine = self._engine
        track = engine.health.track(ref)
        if track is not None or engine.is_host:
            return track
        snap = self._stored_health.get((ref.domain.value, ref.key))
        if snap is None:
            return None
        cached = self._stored_tracks.get(ref)
        if cached is not None and cached[0] is snap:
            return cached[1]
        track = track_from_snapshot(ref, snap, engine.health.interval_s)
        self._stored_tracks[ref] = (snap, track)
        return track

    def component_history(self, domain: Domain | str, key: str) -> ComponentHistory:
        """A key's health samples and the journal's swaps, rollbacks and health changes over
        the same span (the last hour when there are no samples yet)."""
        engine = self._engine
        ref = engine.known(domain, key)
        if not engine.is_host:  # this key's newest stored snapshot (one row, not the whole table)
            snap = engine.store.get_health(ref.domain, ref.key)
            if snap is not None:
                self._stored_health[(ref.domain.value, ref.key)] = snap
        track = self.health_track(ref)
        since = min((s.ts for s in track.samples), default=None) if track else None
        since = (since if since is not None else time.time()) - engine.health.interval_s
        events = engine.store.journal(kinds=list(MARKER_KINDS), domain=ref.domain, key=ref.key,
                                      since_ts=min(since, time.time() - 3600), limit=1000)
        exact = engine.is_host or engine.health.track(ref) is not None
        return build_history(ref, track, events, exact_times=exact)

    def candidate_records(self, domain: Domain | str, key: str,
                          window_s: float = HISTORY_WINDOW_S) -> dict[str, CandidateRecord]:
        """Each candidate of a key with its last health gate and its failures in the last
        `window_s`, from the journal (the same in every process)."""
        engine = self._engine
        ref = engine.known(domain, key)
        events = engine.store.journal(kinds=SWAP_OUTCOME_KINDS, domain=ref.domain, key=ref.key, limit=500)
        return journal_records(events, now=time.time(), window_s=window_s)
