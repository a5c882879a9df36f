"""Engine: the composition root and the one API the console, the CLI and the host use.

It loads settings, registers candidates, and wires the resolver, lifecycle, activity,
health monitor, journal and telemetry together. Constructing an Engine is cheap and does
no provider I/O (the CLI builds one per command); `start()` makes this process the host:
it takes the lease, activates every winner and starts the health monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .activity import ActivityManager, ActivityState
from .approvals import Approvals
from .domains import Candidate, ComponentRef, Domain, HealthResult
from .errors import NotFound, OneiricError, ReadOnlyError
from .events import Event, EventBus, Severity, Subscription
from .health import HealthMonitor, HealthTrack
from .identity import operator_identity
from .lifecycle import LifecycleManager, LifecycleOptions, LifecycleState, Slot, SwapResult, _Use
from .providers import builtin_candidates
from .registry import CandidateRegistry
from .resolver import Explanation, Resolver, StackOrder
from .settings import ConfigProblem, SettingsLoader, SettingsSnapshot
from .store import (
    HealthSnapshot, LeaseInfo, LifecycleSnapshot, ProposalRecord, StateStore, StoreError,
)

LEASE_STALE_AFTER_S = 5.0
HEARTBEAT_S = 1.0
PRUNE_EVERY_S = 3600.0
HEALTH_WRITE_DELAY_S = 0.05
ACTIVATION_CONCURRENCY = 16


class HostBusy(OneiricError):
    """Another live process already hosts this state directory."""

    def __init__(self, holder: LeaseInfo) -> None:
        self.holder = holder
        super().__init__(
            f"Another host (pid {holder.pid} on {holder.hostname}) already runs this state directory."
        )


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
    last_swap: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("ref")
        return {"domain": self.ref.domain.value, "key": self.ref.key, **out}


class Engine:
    def __init__(
        self,
        settings_dir: str | Path = "settings",
        *,
        state_dir: str | Path | None = None,
        read_only: bool | None = None,
        actor: str | None = None,
    ) -> None:
        self.settings_dir = Path(settings_dir)
        self._loader = SettingsLoader(self.settings_dir)
        self.settings: SettingsSnapshot = self._loader.load()
        self.state_dir = Path(state_dir).resolve() if state_dir else self.settings.state_dir
        self.settings = self._loader.use_keep_dir(self.state_dir / "settings-last-good")
        app = self.settings.app
        self.read_only = app.read_only if read_only is None else read_only
        self.actor = actor or operator_identity()
        self.bus = EventBus()
        self.store = StateStore(self.state_dir / "state.sqlite")
        self.store_error: str | None = None
        self.registry = CandidateRegistry()
        self.resolver = Resolver(self.registry, settings_dir_label=_label(self.settings_dir))
        self._apply_settings(self.settings)
        self.activity = ActivityManager(self.store, self.emit)
        self.approvals = Approvals(
            self.store, self.emit, mode=app.approvals.mode, two_person=app.approvals.two_person,
            expire_after_s=app.approvals.expire_after_s,
        )
        self.telemetry: Any | None = None
        self.lifecycle = LifecycleManager(
            self.resolver,
            LifecycleOptions(**app.lifecycle.model_dump()),
            allowlist=list(app.factory_allowlist),
            state_dir=self.state_dir,
            emit=self.emit,
            blocker=self.activity.blocker,
            on_change=self._persist_slot,
            on_health=self._on_health,
            on_gate=self._on_gate,
            batch=self._store_batch,
        )
        self.health = HealthMonitor(
            self.lifecycle.probe,
            self._serving_refs,
            interval_s=app.health.interval_s,
            history=app.health.history,
            emit=self.emit,
            on_update=self._persist_health,
        )
        self.started = False
        self.is_host = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._watchers: list[Callable[[ComponentRef], None]] = []
        self._health_dirty: dict[ComponentRef, HealthSnapshot] = {}
        self._health_flush: asyncio.TimerHandle | None = None
        # Last health seen per (key, provider), from probes and swap health gates: what the
        # console shows next to each candidate when picking a swap target.
        self.candidate_health: dict[tuple[ComponentRef, str], HealthResult] = {}

    # -- journal and bus -------------------------------------------------------------------
    def emit(self, event: Event) -> Event:
        """Journal an event and fan it out. A failing store never stops the engine."""
        try:
            self.store.append(event)
        except StoreError as exc:
            if self.store_error is None:
                print(f"oneiric: {exc}", file=sys.stderr)
            self.store_error = str(exc)
        self.bus.publish(event)
        return event

    @contextlib.contextmanager
    def _store_batch(self) -> Iterator[None]:
        """Group a swap's journal and snapshot writes in one transaction; never raises StoreError."""
        try:
            with self.store.batch():
                yield
        except StoreError as exc:
            self.store_error = str(exc)

    def watch(self, callback: Callable[[ComponentRef], None]) -> Callable[[], None]:
        """Call `callback(ref)` whenever a key's lifecycle or health changes (not journaled,
        so it fires for every health sample). Returns a function that stops the calls."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    def _changed(self, ref: ComponentRef) -> None:
        for callback in list(self._watchers):
            callback(ref)

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        return self.bus.subscribe(maxsize)

    def journal(self, **filters: Any) -> list[Event]:
        return self.store.journal(**filters)

    # -- settings --------------------------------------------------------------------------
    def _apply_settings(self, snap: SettingsSnapshot) -> set[ComponentRef]:
        builtins = []
        for cand in builtin_candidates():
            overrides = snap.domains[cand.domain].provider_settings.get(cand.key, {}).get(cand.provider, {})
            builtins.append(dataclasses.replace(cand, settings={**cand.settings, **overrides}))
        local = []
        for domain, layer in snap.domains.items():
            for spec in layer.candidates:
                overrides = layer.provider_settings.get(spec.key, {}).get(spec.provider, {})
                local.append(Candidate(
                    domain, spec.key, spec.provider, spec.factory, spec.priority, spec.stack_level,
                    "settings", {**spec.settings, **overrides}, dict(spec.metadata),
                ))
        self.registry.replace_source("builtin", builtins)
        self.registry.replace_source("settings", local)
        self.resolver.set_stack_order(StackOrder.parse(snap.stack_order))
        return self.resolver.set_selections({d: dict(layer.selections) for d, layer in snap.domains.items()})

    def reload_settings(self) -> list[ConfigProblem]:
        """Reload every settings file; a broken file keeps its last good content in force."""
        snap = self._loader.load()
        self.settings = snap
        self._journal_problems(snap.problems)
        before = {ref: self.resolver.selection(ref) for ref in self.resolver.refs()}
        changed = self._apply_settings(snap)
        for ref in sorted(changed, key=str):
            old, new = before.get(ref), self.resolver.selection(ref)
            self.emit(Event(
                "selection-changed", f"{ref} selection {old or 'none'} -> {new or 'none'}",
                Severity.INFO, ref.domain, ref.key, new, self.actor, data={"from": old, "to": new},
            ))
        return snap.problems

    def _journal_problems(self, problems: list[ConfigProblem]) -> None:
        for problem in problems:
            self.emit(Event(
                "config-invalid", f"{problem}; {self.settings.fallback(problem)}",
                Severity.ERROR, actor=self.actor, data=problem.to_dict(),
            ))

    # -- hosting ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Become the host: take the lease, activate every winner, start health probes."""
        if self.started:
            return
        acquired, holder = self.store.acquire_lease(
            os.getpid(), socket.gethostname(), stale_after_s=LEASE_STALE_AFTER_S)
        if not acquired:
            assert holder is not None
            raise HostBusy(holder)
        self.is_host = True
        self.started = True
        self._start_telemetry()
        self.store.clear_lifecycle()
        self.store.clear_health()
        pruned = self.prune_journal()
        self._last_prune = time.monotonic()
        self.emit(Event("host-started", f"host started (pid {os.getpid()} on {socket.gethostname()})",
                        actor=self.actor, data={"pid": os.getpid(), "pruned": pruned}))
        self._journal_problems(self.settings.problems)
        await self.activate_all()
        self.health.start()
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="oneiric-lease-heartbeat"))

    def _start_telemetry(self) -> None:
        from .telemetry import Telemetry  # imported here: the CLI's read commands never pay for it

        opts = self.settings.app.telemetry
        self.telemetry = Telemetry(opts.exporter, opts.endpoint, opts.service_name)
        self.telemetry.observe_resolutions(
            lambda: {d.value: n for d, n in self.resolver.resolutions.items()})
        self.lifecycle._telemetry = self.telemetry
        self.health._telemetry = self.telemetry

    async def activate_all(self) -> list[SwapResult]:
        """Activate every winner, a few at a time: thousands at once would stall the loop long
        enough for healthy providers to miss their health timeout."""
        refs = [ref for ref in self.resolver.refs() if self._has_winner(ref)]
        gate = asyncio.Semaphore(ACTIVATION_CONCURRENCY)

        async def activate(ref: ComponentRef) -> SwapResult:
            async with gate:
                return await self.lifecycle.activate(ref, actor=self.actor)

        return list(await asyncio.gather(*(activate(ref) for ref in refs)))

    def _has_winner(self, ref: ComponentRef) -> bool:
        try:
            return self.resolver.explain(ref.domain, ref.key).winner is not None
        except NotFound:
            return False

    async def _heartbeat(self) -> None:
        """Each second: renew the lease and pick up pause/drain/resume written by other processes."""
        pid, host = os.getpid(), socket.gethostname()
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if not self.store.heartbeat(pid, host):
                    self.emit(Event("host-stopped", "this host lost its lease to another process",
                                    Severity.ERROR, actor=self.actor))
                    return
                self.sync_activity()
                if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
                    self._last_prune = time.monotonic()
                    self.prune_journal()
            except StoreError as exc:
                self.store_error = str(exc)

    def prune_journal(self) -> int:
        """Apply the journal retention of app.yml (max age, max rows); returns rows deleted."""
        retention = self.settings.app.journal
        return self.store.prune_journal(max_age_s=retention.max_age_days * 86400,
                                        max_rows=retention.max_rows)

    def sync_activity(self) -> None:
        """Adopt activity changes made by other processes; finish drains they started."""
        for ref in self.activity.reload():
            if self.activity.state(ref) == ActivityState.DRAINING:
                record = self.activity.get(ref)
                self._tasks = [t for t in self._tasks if not t.done()]
                self._tasks.append(asyncio.create_task(self.activity.finish_drain(
                    ref, inflight=lambda r=ref: self.lifecycle.slot(r).inflight,
                    wait_idle=lambda t, r=ref: self._wait_idle(r, t),
                    actor=record.actor, note=record.note,
                )))

    async def stop(self) -> None:
        """Stop probes, stop every provider after its in-flight work, release the lease."""
        if not self.started:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.health.stop()
        self.flush_snapshots()
        await self.lifecycle.stop_all()
        self.emit(Event("host-stopped", f"host stopped (pid {os.getpid()})", actor=self.actor))
        try:
            self.store.release_lease(os.getpid(), socket.gethostname())
        except StoreError as exc:
            self.store_error = str(exc)
        if self.telemetry is not None:
            self.telemetry.shutdown()
        self.lifecycle.close()
        self.started = False
        self.is_host = False

    def close(self) -> None:
        self.lifecycle.close()
        self.store.close()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self.close()

    def host(self) -> tuple[LeaseInfo | None, bool]:
        """The lease holder and whether its heartbeat is fresh."""
        lease = self.store.current_lease()
        if lease is None:
            return None, False
        return lease, not lease.is_stale(time.time(), LEASE_STALE_AFTER_S)

    # -- resolution ------------------------------------------------------------------------
    def ref(self, domain: Domain | str, key: str) -> ComponentRef:
        return ComponentRef(Domain.parse(domain), key)

    def resolve(self, domain: Domain | str, key: str) -> Candidate:
        return self.resolver.resolve(domain, key)

    def explain(self, domain: Domain | str, key: str) -> Explanation:
        return self.resolver.explain(domain, key)

    def known(self, domain: Domain | str, key: str) -> ComponentRef:
        """The ref for a key that exists (has candidates or a selection), else NotFound."""
        ref = self.ref(domain, key)
        self.resolver.explain(ref.domain, key)
        return ref

    def use(self, domain: Domain | str, key: str) -> _Use:
        return self.lifecycle.use(domain, key)

    # -- changes ---------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"Read-only mode: {what} is disabled.")

    async def swap(
        self, domain: Domain | str, key: str, provider: str | None = None, *,
        source: str | None = None, force: bool = False, dry_run: bool = False, actor: str | None = None,
    ) -> SwapResult:
        ref = self.known(domain, key)
        if not dry_run:
            self._writable("swap")
        return await self.lifecycle.swap(ref, provider, source=source, force=force, dry_run=dry_run,
                                         actor=actor or self.actor)

    # -- change control: every swap is a proposal first --------------------------------------
    async def request_swap(
        self, domain: Domain | str, key: str, provider: str | None = None, *, force: bool = False,
        source: str = "console", reason: str = "", actor: str | None = None, approve: bool = False,
        to_source: str | None = None,
    ) -> tuple[ProposalRecord, SwapResult | None]:
        """Propose a swap and apply it when the policy allows: at once under `mode: auto`, or
        when the requester approves it in the same breath (`approve`, refused by two_person).
        Returns the proposal and the swap result (None while it waits for an approver)."""
        ref = self.known(domain, key)
        self._writable("swap")
        actor = actor or self.actor
        plan = self.lifecycle.plan(ref, provider, source=to_source, force=force, actor=actor)
        record = self.approvals.propose(
            ref, plan.to_provider, from_provider=plan.from_provider, to_source=plan.to_source,
            force=force, source=source, reason=reason, requested_by=actor,
        )
        if self.approvals.mode == "auto":
            return await self.approve(record.id, actor="policy:auto")
        if approve and not self.approvals.two_person:
            return await self.approve(record.id, actor=actor)
        return record, None

    async def approve(self, proposal_id: int, *, actor: str | None = None,
                      comment: str | None = None) -> tuple[ProposalRecord, SwapResult]:
        """Approve a pending proposal and apply its swap; the proposal records the outcome."""
        self._writable("approve")
        record = self.approvals.approve(proposal_id, actor or self.actor, comment)
        ref = self.known(record.domain, record.key)
        try:
            result = await self.lifecycle.swap(ref, record.to_provider, source=record.to_source,
                                               force=record.force, actor=record.decided_by)
        except NotFound as exc:
            self.approvals.settle(record, "failed", str(exc))
            raise
        self.approvals.settle(record, result.outcome.value, result.reason)
        return record, result

    def reject(self, proposal_id: int, *, actor: str | None = None, comment: str | None = None) -> ProposalRecord:
        self._writable("reject")
        return self.approvals.reject(proposal_id, actor or self.actor, comment)

    def pause(self, domain: Domain | str, key: str, *, note: str | None = None, actor: str | None = None):
        ref = self.known(domain, key)
        self._writable("pause")
        return self.activity.pause(ref, actor=actor or self.actor, note=note)

    def resume(self, domain: Domain | str, key: str, *, note: str | None = None, actor: str | None = None):
        ref = self.known(domain, key)
        self._writable("resume")
        return self.activity.resume(ref, actor=actor or self.actor, note=note)

    async def drain(self, domain: Domain | str, key: str, *, note: str | None = None,
                    actor: str | None = None, timeout: float | None = None):
        ref = self.known(domain, key)
        self._writable("drain")
        return await self.activity.drain(
            ref,
            inflight=lambda: self.lifecycle.slot(ref).inflight,
            wait_idle=lambda t: self._wait_idle(ref, t),
            actor=actor or self.actor, note=note, timeout=timeout,
        )

    async def _wait_idle(self, ref: ComponentRef, timeout: float) -> None:
        instance = self.lifecycle.slot(ref).current
        if instance is None:
            return
        await instance.wait_idle(timeout)

    async def probe(self, domain: Domain | str, key: str, *, actor: str | None = None,
                    journal: bool = False) -> HealthTrack | None:
        """Probe the serving provider now; `journal` records it (an operator's explicit probe)."""
        ref = self.known(domain, key)
        track = await self.health.probe(ref)
        if journal:
            if track is None:
                message, outcome = f"{ref} probed: nothing is serving", None
            else:
                latency = f" in {track.latency_ms:.1f} ms" if track.latency_ms is not None else ""
                detail = f": {track.message}" if track.message else ""
                message, outcome = f"{ref} ({track.provider}) probed: {track.status.value}{latency}{detail}", track.status.value
            self.emit(Event("health-probed", message, Severity.INFO, ref.domain, ref.key,
                            track.provider if track else None, actor or self.actor, outcome,
                            track.latency_ms if track else None))
        return track

    async def probe_candidate(self, domain: Domain | str, key: str, provider: str | None = None):
        """Build, probe and stop a candidate in this process (no host needed)."""
        ref = self.known(domain, key)
        cand = self.lifecycle._target(ref, provider, None)
        return cand, await self.lifecycle.probe_candidate(cand)

    # -- persistence for other processes ---------------------------------------------------
    def _serving_refs(self) -> list[ComponentRef]:
        return [s.ref for s in self.lifecycle.slots() if s.current is not None]

    def _on_health(self, ref: ComponentRef, provider: str, result: HealthResult) -> None:
        self.candidate_health[(ref, provider)] = result
        self.health.record(ref, provider, result)

    def _on_gate(self, ref: ComponentRef, provider: str, result: HealthResult) -> None:
        self.candidate_health[(ref, provider)] = result

    def _persist_slot(self, slot: Slot) -> None:
        self._changed(slot.ref)
        if not self.is_host:
            return
        cand = slot.current.candidate if slot.current else None
        self._store_write(self.store.put_lifecycle, LifecycleSnapshot(
            slot.ref.domain.value, slot.ref.key, slot.state.value,
            cand.provider if cand else None, cand.source if cand else None,
            slot.pending.provider if slot.pending else None, slot.last_error, slot.inflight,
            slot.last_swap.to_dict() if slot.last_swap else None, time.time(),
        ))

    def _persist_health(self, track: HealthTrack) -> None:
        """Health samples arrive one per key per round; they are written together, in one
        transaction a moment later, so 2,500 probes cost one write instead of 2,500."""
        self._changed(track.ref)
        if not self.is_host:
            return
        self._health_dirty[track.ref] = HealthSnapshot(
            track.ref.domain.value, track.ref.key, track.provider, track.status.value,
            track.latency_ms, track.message, track.checked_at or time.time(), track.changed_at,
            [s.latency_ms for s in track.samples],
        )
        if self._health_flush is None:
            self._health_flush = asyncio.get_running_loop().call_later(
                HEALTH_WRITE_DELAY_S, self.flush_snapshots)

    def flush_snapshots(self) -> None:
        """Write the health snapshots waiting to be written (also done on stop)."""
        if self._health_flush is not None:
            self._health_flush.cancel()
            self._health_flush = None
        dirty, self._health_dirty = self._health_dirty, {}
        if dirty:
            with self._store_batch():
                for snapshot in dirty.values():
                    self._store_write(self.store.put_health, snapshot)

    def _store_write(self, fn: Callable[[Any], Any], value: Any) -> None:
        try:
            fn(value)
        except StoreError as exc:
            self.store_error = str(exc)

    # -- the status every front door shows -------------------------------------------------
    def components(self, refs: list[ComponentRef] | None = None) -> list[ComponentStatus]:
        """Status of every key (or of `refs`), from this process when it is the host, else from
        the snapshots the host keeps in the store."""
        _, alive = self.host() if not self.is_host else (None, False)
        live_remote = alive and not self.is_host
        snaps = {(s.domain, s.key): s for s in self.store.all_lifecycle()} if live_remote else {}
        healths = {} if self.is_host else {(h.domain, h.key): h for h in self.store.all_health()}
        out = []
        for ref in self.resolver.refs() if refs is None else refs:
            try:
                exp = self.resolver.explain(ref.domain, ref.key)
            except NotFound:
                continue
            winner = exp.winner
            act = self.activity.get(ref)
            slot = self.lifecycle.find_slot(ref)
            track = self.health.track(ref)
            if self.is_host:
                serving = slot.current.candidate if slot and slot.current else None
                state = slot.state.value if slot else LifecycleState.INACTIVE.value
                serving_p, serving_s = (serving.provider, serving.source) if serving else (None, None)
                inflight = slot.inflight if slot else 0
                last_error = slot.last_error if slot else None
                last_swap = slot.last_swap.to_dict() if slot and slot.last_swap else None
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
                exp.selection, exp.misconfigured, len(exp.ranked), max(0, len(exp.ranked) - 1),
                serving_p, serving_s, state, inflight, act.state, act.note, act.actor,
                health[0], health[1], health[2], health[3], last_error, last_swap,
            ))
        return out


def _label(path: Path) -> str:
    """How settings paths appear in messages: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


__all__ = ["ActivityState", "ComponentStatus", "Engine", "HostBusy"]
