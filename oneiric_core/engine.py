"""Engine: the composition root and the one API the console, the CLI and the host use.

It loads settings, registers candidates, and wires the resolver, lifecycle, activity,
health monitor, journal and telemetry together. Constructing an Engine is cheap and does
no provider I/O (the CLI builds one per command); `start()` makes this process the host:
it takes the lease, activates every winner and starts the health monitor and the command
queue through which other processes ask it to act (commands.py). An Engine that is not the
host changes only the desired state: `approve` then writes the selection into settings.

It composes named services, each a module with one job: the settings sync with its watcher
(settings_sync.py), the status view (status_view.py), the snapshots the host writes for it
(snapshot_writer.py), the host's telemetry (host_telemetry.py), the host session
(host_session.py) and the remote manager (remote/loop.py). It keeps thin
delegating methods for what its callers used before (`components`, `watcher_status`,
`telemetry_status`, ...), and the modules handed the engine reach it through the small
Protocols in ports.py, which name what each uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .access import AccessPolicy, Forbidden, Right
from .activity import ActivityManager, ActivityState
from .approvals import Approvals
from .bulk import freeze_long_lived, gc_paused
from .candidate_record import WINDOW_S as HISTORY_WINDOW_S
from .candidate_record import CandidateRecord
from .component_history import ComponentHistory
from .domains import Candidate, ComponentRef, Domain, HealthResult
from .errors import NotFound, OneiricError, ReadOnlyError, UsageError
from .events import Event, EventBus, Severity, Subscription
from .factories import preload_modules
from .health import HealthMonitor, HealthTrack
from .host_session import HEARTBEAT_S, HostBusy
from .host_telemetry import HostTelemetry
from .identity import other_process_alive
from .lifecycle import LifecycleManager, LifecycleOptions, Slot, SwapResult, _Use
from .principal import Principal
from .providers import builtin_candidates
from .recovery import recover_interrupted_swaps
from .registry import CandidateRegistry
from .resolver import Explanation, Resolver, StackOrder
from .retention import PruneReport, RetentionPolicy
from .retention import prune as prune_by_retention
from .sdnotify import supervision
from .seal import RowSeal
from .settings import ConfigProblem, SettingsLoader, SettingsSnapshot
from .settings_sync import SettingsSync
from .settings_sync import path_label as _label
from .snapshot_writer import SnapshotWriter
from .status_view import ComponentStatus, StatusView
from .store import (
    LEASE_STALE_AFTER_S,
    ActivityRecord,
    LeaseInfo,
    ProposalRecord,
    StateStore,
    StoreError,
)
from .store.scope import default_node, node_name
from .watcher import SettingsWatcher, WatcherStatus

ACTIVATION_CONCURRENCY = 16
# Activations between two freezes of what they built (bulk.freeze_long_lived); settings with
# fewer keys are never frozen (tests start hundreds of small engines in one process).
FREEZE_EVERY_ACTIVATIONS = 500


# Events after which the host journals a registry census (registry_census): the start, a
# settings file applied, a manifest put in force.
CENSUS_KINDS = frozenset({"host-started", "config-changed", "remote-sync-complete"})


class Engine:
    def __init__(
        self,
        settings_dir: str | Path = "settings",
        *,
        state_dir: str | Path | None = None,
        read_only: bool | None = None,
        actor: Principal | str | None = None,
        node: str | None = None,
    ) -> None:
        self.settings_dir = Path(settings_dir)
        self._loader = SettingsLoader(self.settings_dir)
        self.settings: SettingsSnapshot = self._loader.load()
        self.state_dir = Path(state_dir).resolve() if state_dir else self.settings.state_dir
        self.settings = self._loader.use_keep_dir(self.state_dir / "settings-last-good")
        app = self.settings.app
        self.read_only = app.read_only if read_only is None else read_only
        # Who this process acts as: its own OS account (principal.py). On the host, requests
        # from other processes carry their own principal, from the kernel (host_session.py).
        self.principal = _as_principal(actor, Principal.of_process())
        self.actor = self.principal.label
        self.bus = EventBus()
        # The node this process is: what it writes carries it; a fleet's hosts are told apart by it.
        self.node = default_node() if node is None else node_name(node)
        self.store = StateStore(self.state_dir / "state.sqlite", url=self.settings.store_url, node=self.node)
        self.store.seal = RowSeal.for_state_dir(self.state_dir)
        self.access = AccessPolicy.from_settings(self.state_dir, app.access)
        self.store_error: str | None = None
        self.store_failures = 0  # store writes that failed and were swallowed (emit, store_batch)
        self.running_command = 0  # commands.execute calls in progress (they report store failures)
        self.registry = CandidateRegistry()
        self.resolver = Resolver(self.registry, settings_dir_label=_label(self.settings_dir))
        with gc_paused():  # thousands of candidates, no cycles: see bulk.py
            self.apply_settings(self.settings)
        self.activity = ActivityManager(self.store, self.emit, self.bus.publish)
        self.approvals = Approvals(
            self.store, self.emit, mode=app.approvals.mode, two_person=app.approvals.two_person,
            expire_after_s=app.approvals.expire_after_s,
        )
        # The host's spans, metrics and journal log records, and their status (host_telemetry.py).
        self.host_telemetry = HostTelemetry(self)
        # The host's lifecycle and health rows in the store, for other processes (snapshot_writer.py).
        self.snapshots = SnapshotWriter(self)
        self.lifecycle = LifecycleManager(
            self.resolver,
            LifecycleOptions(**dataclasses.asdict(app.lifecycle)),
            allowlist=list(app.factory_allowlist),
            state_dir=self.state_dir,
            emit=self.emit,
            blocker=self.activity.blocker,
            on_change=self._slot_changed,
            on_health=self._on_health,
            on_gate=self._on_gate,
            batch=self.store_batch,
        )
        self.health = HealthMonitor(
            self.lifecycle.probe,
            self._serving_refs,
            interval_s=app.health.interval_s,
            history=app.health.history,
            emit=self.emit,
            on_update=self._health_changed,
        )
        self.started = False
        self.is_host = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._watchers: list[Callable[[ComponentRef], None]] = []
        # Last health seen per (key, provider), from probes and swap health gates: what the
        # console shows next to each candidate when picking a swap target.
        self.candidate_health: dict[tuple[ComponentRef, str], HealthResult] = {}
        # What every front door shows of each key, here or from the host's snapshots.
        self.status_view = StatusView(self)
        # The lease, its heartbeat and the socket other processes ask through; while hosting.
        from .host_session import HostSession

        self.session = HostSession(self)
        self._seen_signatures: set[str] = set()  # signed requests taken (each counts once)
        # The settings files on disk, kept in force by the host's watcher (settings_sync.py).
        self.settings_sync = SettingsSync(self, self._loader)
        # Remote manifests (remote/): the last good manifest of each source is in force from
        # the cache in every process; the host runs the refresh loops (start/stop below).
        from .remote.loop import RemoteManager

        self.remote = RemoteManager(self)

    # -- journal and bus -------------------------------------------------------------------
    def emit(self, event: Event) -> Event:
        """Journal an event and fan it out. A failing store never stops the engine; it is
        counted (`store_failures`), so a command that wrote through it cannot report success
        (commands.execute says so instead of printing it here)."""
        if event.kind in CENSUS_KINDS and self.is_host:
            # what the registry holds after this change: 'is it increasing?' compares these
            event.data.setdefault("registry", self.registry_census())
        try:
            self.store.append(event)
        except StoreError as exc:
            self._store_failed(exc)
        self.bus.publish(event)
        return event

    def registry_census(self) -> dict[str, int]:
        """Candidates registered and how many of them are shadowed (every candidate of a key
        but its winner), journaled with each change to the registry (CENSUS_KINDS)."""
        total, keys = len(self.registry), len(self.registry.refs())
        return {"candidates": total, "shadowed": total - keys}

    def _store_failed(self, exc: StoreError) -> None:
        if self.store_error is None and not self.running_command:
            print(f"oneiric: {exc}", file=sys.stderr)
        self.store_error = str(exc)
        self.store_failures += 1

    @contextlib.contextmanager
    def store_batch(self) -> Iterator[None]:
        """Group a swap's journal and snapshot writes in one transaction; never raises StoreError."""
        try:
            with self.store.batch():
                yield
        except StoreError as exc:
            self._store_failed(exc)

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
    def apply_settings(self, snap: SettingsSnapshot) -> set[ComponentRef]:
        """Register a snapshot's candidates and selections (builtin and settings sources);
        the keys whose selection it changed."""
        builtins = []
        for cand in builtin_candidates():
            overrides = snap.domains[cand.domain].provider_settings.get(cand.key, {}).get(cand.provider, {})
            builtins.append(dataclasses.replace(cand, settings={**cand.settings, **overrides}))
        local = []  # field tuples: the registry builds each Candidate once (see replace_source_fields)
        for domain, layer in snap.domains.items():
            for spec in layer.candidates:
                overrides = layer.provider_settings.get(spec.key, {}).get(spec.provider, {})
                local.append((
                    domain, spec.key, spec.provider, spec.factory, spec.priority, spec.stack_level,
                    {**spec.settings, **overrides}, dict(spec.metadata),
                ))
        # Order and selections first, candidates last: each step re-ranks the keys it changes,
        # so this ranks a new key once (at start-up, 10,000 candidates) instead of three times.
        self.resolver.set_stack_order(StackOrder.parse(snap.stack_order))
        changed = self.resolver.set_selections({d: dict(layer.selections) for d, layer in snap.domains.items()})
        self.registry.replace_source("builtin", builtins)
        self.registry.replace_source_fields("settings", local)
        return changed

    def reload_settings(self) -> list[ConfigProblem]:
        """Reload every settings file; a broken file keeps its last good content in force."""
        snap = self._loader.load()
        self.settings = snap
        self.journal_problems(snap.problems)
        before = {ref: self.resolver.selection(ref) for ref in self.resolver.refs()}
        changed = self.apply_settings(snap)
        for ref in sorted(changed, key=str):
            old, new = before.get(ref), self.resolver.selection(ref)
            self.emit(Event(
                "selection-changed", f"{ref} selection {old or 'none'} -> {new or 'none'}",
                Severity.INFO, ref.domain, ref.key, new, self.actor, data={"from": old, "to": new},
            ))
        return snap.problems

    def journal_problems(self, problems: list[ConfigProblem]) -> None:
        """Journal each settings problem as config-invalid, with what stays in force."""
        for problem in problems:
            self.emit(Event(
                "config-invalid", f"{problem}; {self.settings.fallback(problem)}",
                Severity.ERROR, actor=self.actor, data=problem.to_dict(),
            ))

    # -- the settings watcher: edits on disk become proposals (settings_sync.py) ------------
    @property
    def watcher(self) -> SettingsWatcher | None:
        """The host's settings watcher, while hosting."""
        return self.settings_sync.watcher

    def watcher_status(self) -> WatcherStatus:
        """Whether settings edits on disk are being picked up (SettingsSync.status)."""
        return self.settings_sync.status()

    def settings_file_changed(self, path: str | Path) -> None:
        """A settings file settled on disk: reload and apply it now (SettingsSync.file_changed)."""
        self.settings_sync.file_changed(path)

    def spawn(self, coro: Any, name: str) -> None:
        """Run `coro` as a task the host cancels and awaits when it stops."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(coro, name=name))

    # -- hosting ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Become the host: take the lease (a stale one, or one whose holder process on this
        machine is gone), settle the swaps a dead predecessor left half done, activate every
        winner, start health probes and the command queue other processes talk to."""
        if self.started:
            return
        if len(self.resolver.refs()) >= FREEZE_EVERY_ACTIVATIONS:
            # What Engine() built (settings, registry, resolver) lives as long as the host,
            # and was built with the collector paused (bulk.py): freeze it before the first
            # young collection walks it all (70 ms at 50,000 candidates), then full ones.
            gc.freeze()
        await asyncio.to_thread(_warm_host_imports)
        await self._preload_factories()
        before = self.session.acquire()
        self.is_host = True
        self.started = True
        # Renew the lease from now on: activating thousands of keys can outlast its staleness.
        self.session.start_heartbeat()
        await self.session.serve()  # requests wait for session.ready (below)
        self.host_telemetry.start()
        self.store.clear_health()
        self.session.start_pruning()  # on a worker thread: activation does not wait for it (retention.py)
        took_over = None if before is None else {"pid": before.pid, "hostname": before.hostname}
        self.emit(Event("host-started", f"host started (pid {os.getpid()} on {socket.gethostname()})"
                        + (f", taking over from pid {before.pid} on {before.hostname}" if before else ""),
                        actor=self.actor, data={"pid": os.getpid(), "took_over": took_over,
                                                "supervision": supervision()}))
        recover_interrupted_swaps(self.store, self.approvals, self.emit, previous=before, actor=self.actor)
        self.store.clear_lifecycle()
        self.activity.reload()  # the desired state written while no host ran, as of now
        self.journal_problems(self.settings.problems)
        await self.remote.start()  # the first sync of each source, a few seconds at most
        await self.activate_all()
        self.remote.mark_activated()
        self.health.start()
        self.session.ready.set()
        self.settings_sync.start()

    @property
    def telemetry(self) -> Any | None:
        """The host's Telemetry (telemetry.py), from start() on; None in other processes."""
        return self.host_telemetry.telemetry

    def telemetry_status(self) -> Any:
        """How telemetry is doing (HostTelemetry.status)."""
        return self.host_telemetry.status()

    @property
    def telemetry_problem(self) -> str | None:
        """One sentence when a configured exporter is missing or failing, else None."""
        return self.telemetry_status().problem

    async def activate_all(self) -> list[SwapResult]:
        """Activate every winner, a few at a time: thousands at once would stall the loop long
        enough for healthy providers to miss their health timeout."""
        refs = [ref for ref in self.resolver.refs() if self._has_winner(ref)]
        results: list[SwapResult | None] = [None] * len(refs)
        todo = iter(range(len(refs)))
        many = len(refs) >= FREEZE_EVERY_ACTIVATIONS
        done = 0

        # ACTIVATION_CONCURRENCY workers taking the next key, not one task per key behind a
        # semaphore: creating 12,500 tasks at once was itself a 100-200 ms stall of the loop.
        async def worker() -> None:
            nonlocal done
            for i in todo:
                results[i] = await self.lifecycle.activate(refs[i], actor=self.actor)
                done += 1
                if many and done % FREEZE_EVERY_ACTIVATIONS == 0:
                    freeze_long_lived()

        await asyncio.gather(*(worker() for _ in range(min(ACTIVATION_CONCURRENCY, len(refs)))))
        if many:
            freeze_long_lived()
        return [r for r in results if r is not None]

    async def _preload_factories(self) -> None:
        """Import the winners' provider modules on a worker thread (factories.preload_modules),
        for at most the activation timeout: an import that hangs is then left to activation,
        which times it out per key as before."""
        winners = (self.resolver.winner(ref) for ref in self.resolver.refs())
        factories = sorted({w.factory for w in winners if w is not None})
        allowlist = list(self.settings.app.factory_allowlist)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(preload_modules, factories, allowlist),
                                   self.lifecycle.options.activation_timeout)

    def _has_winner(self, ref: ComponentRef) -> bool:
        return self.resolver.winner(ref) is not None  # not explain(): no reasons worded for 10,000 keys

    def retention_policy(self) -> RetentionPolicy:
        """The journal retention of app.yml (max age, max rows)."""
        journal = self.settings.app.journal
        return RetentionPolicy(max_age_s=journal.max_age_days * 86400, max_rows=journal.max_rows)

    def prune_journal(self, stop: threading.Event | None = None) -> PruneReport:
        """Apply the journal retention, short of what open incidents keep. Blocking, in short
        transactions: the host runs it on a worker thread (HostSession.start_pruning) and
        journals the report on the loop (`journal_pruned`)."""
        return prune_by_retention(self.store, self.retention_policy(), stop=stop)

    def journal_pruned(self, report: PruneReport) -> None:
        """Journal a prune that did something or was held back (on the loop: emit fans out)."""
        if report.pruned:
            self.host_telemetry.count_journal()
        if report.worth_journaling:
            self.emit(Event("journal-pruned", report.sentence(),
                            Severity.WARNING if report.held_by or report.not_reclaimed else Severity.INFO,
                            actor=self.actor, duration_ms=report.took_s * 1000, data=report.to_dict()))

    def guard_activity(self) -> None:
        """Host only, each heartbeat: while a host runs, only it writes activity (every pause,
        drain and resume reaches it over its socket). A row changed in the store any other way
        is journaled store-tampered and put back; what the host holds keeps serving."""
        for ref, found, held in self.activity.drift():
            self.emit(Event("store-tampered", f"{ref}'s activity was set to {found} outside the host; it stays "
                            f"{held}", Severity.ERROR, ref.domain, ref.key, actor=self.actor, outcome="refused",
                            data={"table": "activity", "found": found, "kept": held}))
            self.activity.restore(ref)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking commands and let the running ones finish, stop probes, stop every
        provider after its in-flight work, release the lease.

        `timeout` (default: lifecycle.cleanup_timeout) bounds each of the two waits, for
        running commands and for stopping providers; whatever is still going after it is cut
        short (and journaled), and the lease is released anyway. The lease is renewed until
        then, so no second host starts providers while these still stop."""
        if not self.started:
            return
        stopping_since = time.monotonic()
        cut_short = False  # a wait ran out (the supervisor runbook reads this from host-stopped)
        wait = self.lifecycle.options.cleanup_timeout if timeout is None else timeout
        self.settings_sync.stop()
        await self.remote.stop()
        await self.session.stop_serving(wait)
        self.session.ready.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.health.stop()
        self.flush_snapshots()
        try:
            async with asyncio.timeout(wait):
                await self.lifecycle.stop_all()
        except TimeoutError:
            cut_short = True
            self.emit(Event("cleanup-failed", f"providers were still stopping after {wait:g}s; the host stops "
                            "without waiting for them", Severity.WARNING, actor=self.actor))
        await self.session.stop_heartbeat()
        rest = [t for t in self._tasks if not t.done()]  # drains the heartbeat adopted meanwhile
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        self._tasks.clear()
        took = time.monotonic() - stopping_since
        self.emit(Event("host-stopped", f"host stopped (pid {os.getpid()}) in {took:.1f}s", actor=self.actor,
                        duration_ms=took * 1000,
                        data={"pid": os.getpid(), "took_s": round(took, 3), "timeout_s": wait,
                              "cut_short": cut_short or self.session.cut_short_commands}))
        self.session.release()
        self.host_telemetry.stop()
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
        if lease.is_stale(time.time(), LEASE_STALE_AFTER_S):
            return lease, False
        if (lease.pid, lease.hostname) == (os.getpid(), socket.gethostname()):
            return lease, True  # this process (this engine, or another engine object in it)
        return lease, other_process_alive(lease.hostname, lease.pid) is not False  # a dead pid here: gone

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

    def find_ref(self, domain: Domain | str | None, key: str) -> ComponentRef:
        """The ref for `--key K [--domain D]`: the key alone is enough when only one domain
        has it, as the runbooks write it; NotFound or an ambiguity (UsageError) otherwise."""
        if domain:
            return self.known(domain, key)
        matches = [r for r in self.resolver.refs() if r.key == key]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound(f"No component has the key '{key}'.")
        domains = ", ".join(r.domain.value for r in matches)
        raise UsageError(f"The key '{key}' exists in several domains ({domains}); add --domain.")

    def use(self, domain: Domain | str, key: str) -> _Use:
        return self.lifecycle.use(domain, key)

    # -- changes ---------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"Read-only mode: {what} is disabled.")

    def plan_swap(self, domain: Domain | str, key: str, provider: str | None = None, *,
                  source: str | None = None, force: bool = False) -> SwapResult:
        """The dry run of a swap: from, to, why and what would block it; changes nothing."""
        ref = self.known(domain, key)
        result = self.lifecycle.plan(ref, provider, source=source, force=force, actor=self.actor)
        if not self.is_host:
            result.from_provider = self.status_view.serving_elsewhere(ref)
        return result

    async def _swap_now(
        self, domain: Domain | str, key: str, provider: str | None = None, *,
        source: str | None = None, force: bool = False, actor: str | None = None,
    ) -> SwapResult:
        """The lifecycle swap itself, with no proposal and no policy: internal to the engine
        (approve() runs it once a proposal is decided). Tests and benches that measure the
        swap machinery reach it by this name on purpose; every front door goes through
        request_swap."""
        ref = self.known(domain, key)
        self._writable("swap")
        return await self.lifecycle.swap(ref, provider, source=source, force=force, actor=actor or self.actor)

    # -- change control: every swap is a proposal first --------------------------------------
    async def request_swap(
        self, domain: Domain | str, key: str, provider: str | None = None, *, force: bool = False,
        source: str = "console", reason: str = "", actor: Principal | str | None = None, approve: bool = False,
        to_source: str | None = None, approver: Principal | None = None, comment: str | None = None,
    ) -> tuple[ProposalRecord, SwapResult | None]:
        """Propose a swap and apply it when the policy allows: at once under `mode: auto`, or
        when the requester approves it in the same breath (`approve`, refused by two_person),
        or when `approver` (already decided elsewhere: a fleet rollout's one approval) approves
        it, with `comment`. Returns the proposal and the swap result (None while it waits for
        an approver). `actor` is who asks: a verified Principal from a front door, or a name
        for the engine's own callers (runbooks, the settings watcher, library code)."""
        ref = self.known(domain, key)
        self._writable("swap")
        who = _as_principal(actor, self.principal)
        plan = self.lifecycle.plan(ref, provider, source=to_source, force=force, actor=who.label)
        from_provider = plan.from_provider if self.is_host else self.status_view.serving_elsewhere(ref)
        decider = approver
        if self.approvals.mode == "auto":
            decider, comment = Principal.internal("policy:auto"), None
        elif approve and not self.approvals.two_person:
            decider, comment = who, None
        # On the host, a proposal decided in the same breath is written with its decision in
        # one commit (a PostgreSQL commit is most of a write's cost: issue 18). One the rules
        # refuse (two_person) is stored first and refused after, as a separate approval is.
        at_once = decider is not None and self.is_host and not (
            self.approvals.two_person and decider.same_as(who.id))
        with self.store.batch() if at_once else contextlib.nullcontext():
            record = self.approvals.propose(
                ref, plan.to_provider, from_provider=from_provider, to_source=plan.to_source,
                force=force, source=source, reason=reason, requested_by=who,
            )
            assert record.id is not None  # propose() stored it
            if at_once:
                assert decider is not None
                record = self.approvals.approve(record.id, decider, comment)
        if at_once:
            return record, await self._apply(record)
        if decider is not None:
            return await self.approve(int(record.id or 0), actor=decider, comment=comment)
        return record, None

    def pending_proposals(self) -> list[ProposalRecord]:
        """Undecided, unexpired proposals. The host (or, with none running, a process that
        owns the store) retires the expired ones first, journaling each; any other process
        only reads, since proposals are the host's to write."""
        _, alive = (None, False) if self.is_host else self.host()
        if not alive and self.store.seal is not None:
            return self.approvals.pending()
        now = time.time()
        return [p for p in self.store.proposals(status="pending", limit=10_000)
                if (p.expires_at is None or p.expires_at > now) and p.sealed is not False]

    def fleet_pending_proposals(self) -> list[ProposalRecord]:
        """Every node's undecided, unexpired proposals on a fleet store (this node's as
        `pending_proposals` gives them), by id: to list, each decided by its own node's host
        (operator_port.FleetRoute). On a one-node store, `pending_proposals`."""
        mine = self.pending_proposals()
        if self.store.backend.holds_one_node:
            return mine
        now = time.time()
        theirs = [p for p in self.store.proposals(status="pending", limit=10_000, fleet=True)
                  if p.node != self.node and (p.expires_at is None or p.expires_at > now)]
        return sorted([*mine, *theirs], key=lambda p: p.id or 0)

    def signed_approver(self, action: str, proposal_id: int, principal: Principal,
                        signature: str | None) -> Principal:
        """Who decides a proposal: the caller's OS principal, or, when the decision carries an
        SSH signature that app.yml's `access.allowed_signers` accepts, that key's principal
        (approval_signing.py). An account listed in `access.shared_accounts` must sign: its
        login says nothing about which operator it is."""
        options = self.settings.app.access
        shared = principal.kind == "os-user" and principal.name in options.shared_accounts
        if signature is None:
            if shared:
                raise Forbidden(f"{principal.name} is a shared account (app.yml access.shared_accounts), so a "
                                f"decision from it must carry an SSH signature ('oneiric {action} ID --sign').")
            return principal
        if not options.allowed_signers:
            raise Forbidden("The decision carries an SSH signature, but app.yml sets no access.allowed_signers "
                            "to check it against.")
        from .approval_signing import verify_decision

        signer = verify_decision(action, self.approvals.get(proposal_id), signature, self.store,
                                 self.settings_dir / options.allowed_signers, os_principal=principal)
        self.access.require(signer, Right.APPROVE, f"{action} a proposal")
        return signer

    def signed_requester(self, principal: Principal, args: dict[str, Any]) -> Principal:
        """Who asks for a swap: the caller's OS principal, or the key that signed the request
        (approval_signing.py); a shared account must sign, as for decisions."""
        options = self.settings.app.access
        shared = principal.kind == "os-user" and principal.name in options.shared_accounts
        if args.get("signature") is None:
            if shared:
                raise Forbidden(f"{principal.name} is a shared account (app.yml access.shared_accounts), so a "
                                "swap request from it must carry an SSH signature ('oneiric swap ... --sign').")
            return principal
        if not options.allowed_signers:
            raise Forbidden("The request carries an SSH signature, but app.yml sets no access.allowed_signers "
                            "to check it against.")
        from .approval_signing import verify_request

        signer = verify_request(args, self.store, self.settings_dir / options.allowed_signers,
                                os_principal=principal, seen=self._seen_signatures)
        self.access.require(signer, Right.PROPOSE, "ask for a swap")
        return signer

    async def approve(self, proposal_id: int, *, actor: Principal | str | None = None,
                      comment: str | None = None) -> tuple[ProposalRecord, SwapResult | None]:
        """Approve a pending proposal and apply it; the proposal records the outcome.

        On the host the swap runs now. In a process that is not the host, with no host
        running, the choice is written into the domain's settings file instead (the desired
        state, which takes effect when a host starts) and the swap result is None. The rules
        (two_person, expiry) are Approvals' and hold either way."""
        self._writable("approve")
        if not self.is_host:
            self._refuse_if_hosted("approve")
        record = self.approvals.approve(proposal_id, _as_principal(actor, self.principal), comment)
        if not self.is_host:
            return self._select_in_settings(record), None
        return record, await self._apply(record)

    async def _apply(self, record: ProposalRecord) -> SwapResult:
        """Run an approved proposal's swap on the host and settle the proposal with its outcome."""
        try:
            ref = self.known(record.domain, record.key)
            result = await self.lifecycle.swap(ref, record.to_provider, source=record.to_source,
                                               force=record.force, actor=record.decided_by)
        except NotFound as exc:
            self.approvals.settle(record, "failed", str(exc))
            raise
        except asyncio.CancelledError:  # the host is stopping: say so, the next host will not
            self.approvals.interrupt(record, "the host stopped before the swap finished")
            self.emit(Event("swap-interrupted", f"Swap of {record.domain}/{record.key} to {record.to_provider} "
                            f"(proposal #{record.id}) was interrupted: the host is stopping",
                            Severity.WARNING, Domain.parse(record.domain), record.key, record.to_provider,
                            record.decided_by, "interrupted", data={"proposal": record.id}))
            raise
        self.approvals.settle(record, result.outcome.value, result.reason)
        return result

    def edit_selection(self, domain: Domain | str, key: str, provider: str, *, actor: str | None = None) -> Path:
        """Make `provider` the key's selection in its settings file, keeping comments: the
        permanent way to change a winner. A running host's settings watcher turns the edit
        into a proposal (applied or waiting, by policy); with no host, the next host starts
        with it. Returns the file written."""
        from .settings_edit import set_selection

        ref = self.known(domain, key)
        self._writable("editing settings")
        if provider not in {c.provider for c in self.registry.bucket(ref)}:
            raise NotFound(f"{ref} has no candidate named '{provider}'.")
        old = self.resolver.selection(ref)
        path = set_selection(self.settings_dir, ref.domain, ref.key, provider)
        self.emit(Event("selection-edited", f"{ref} selection {old or 'none'} -> {provider} written to {_label(path)}",
                        Severity.INFO, ref.domain, ref.key, provider, actor or self.actor,
                        data={"from": old, "to": provider, "file": str(path)}))
        return path

    def _refuse_if_hosted(self, what: str) -> None:
        lease, alive = self.host()
        if alive and lease is not None:
            raise OneiricError(f"A host (pid {lease.pid} on {lease.hostname}) runs this state directory, so "
                               f"{what} must go through it (the oneiric CLI does that by itself).")

    def _select_in_settings(self, record: ProposalRecord) -> ProposalRecord:
        """No host: an approved swap becomes the selection in settings/<domain>s.yml (a
        round-trip edit that keeps comments), the state the next host starts from."""
        from .settings_edit import set_selection

        ref = self.ref(record.domain, record.key)
        old = self.resolver.selection(ref)
        try:
            path = set_selection(self.settings_dir, ref.domain, ref.key, record.to_provider)
        except OneiricError as exc:
            self.approvals.settle(record, "failed", f"cannot write the selection: {exc}")
            raise
        label = _label(path)
        self.approvals.settle(record, "selected", f"Selected {record.to_provider} for {ref} in {label}; no host "
                                                  "is running, so it takes effect when a host starts")
        self.emit(Event("selection-changed", f"{ref} selection {old or 'none'} -> {record.to_provider} ({label}), "
                        f"approved by {record.decided_by}; takes effect when a host starts",
                        Severity.INFO, ref.domain, ref.key, record.to_provider, record.decided_by,
                        data={"from": old, "to": record.to_provider, "file": str(path), "proposal": record.id}))
        self.settings = self._loader.load()
        self.apply_settings(self.settings)
        return record

    def reject(self, proposal_id: int, *, actor: Principal | str | None = None,
               comment: str | None = None) -> ProposalRecord:
        self._writable("reject")
        return self.approvals.reject(proposal_id, _as_principal(actor, self.principal), comment)

    def pause(self, domain: Domain | str, key: str, *, note: str | None = None,
              actor: str | None = None) -> ActivityRecord:
        ref = self.known(domain, key)
        self._writable("pause")
        return self.activity.pause(ref, actor=actor or self.actor, note=note)

    def resume(self, domain: Domain | str, key: str, *, note: str | None = None,
               actor: str | None = None) -> ActivityRecord:
        ref = self.known(domain, key)
        self._writable("resume")
        record = self.activity.resume(ref, actor=actor or self.actor, note=note)
        self._activate_if_idle(ref)
        return record

    def _activate_if_idle(self, ref: ComponentRef) -> None:
        """A key paused when the host started was never activated (activation is refused
        while paused): once it accepts work again, start its winner, or it would stay
        "resumed" with nothing serving it."""
        if not (self.is_host and self.started) or self.activity.blocker(ref) is not None:
            return
        slot = self.lifecycle.find_slot(ref)
        if (slot is not None and slot.current is not None) or not self._has_winner(ref):
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self.lifecycle.activate(ref, actor=self.actor),
                                               name=f"oneiric-activate-{ref}"))

    async def drain(self, domain: Domain | str, key: str, *, note: str | None = None,
                    actor: str | None = None, timeout: float | None = None) -> ActivityRecord:
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
        tel = self.telemetry
        if tel is not None and tel.tracing:
            with tel.span("health.probe", {"oneiric.domain": ref.domain.value, "oneiric.key": ref.key}) as span:
                track = await self.health.probe(ref)
                if track is not None:
                    span.set_attributes({"oneiric.provider": track.provider,
                                         "oneiric.health.status": track.status.value})
                    if track.status.value == "failed":
                        tel.failed(span, track.message)
        else:
            track = await self.health.probe(ref)
        if journal:
            if track is None:
                message, outcome = f"{ref} probed: nothing is serving", None
            else:
                latency = f" in {track.latency_ms:.1f} ms" if track.latency_ms is not None else ""
                detail = f": {track.message}" if track.message else ""
                message, outcome = (f"{ref} ({track.provider}) probed: {track.status.value}{latency}{detail}",
                                    track.status.value)
            self.emit(Event("health-probed", message, Severity.INFO, ref.domain, ref.key,
                            track.provider if track else None, actor or self.actor, outcome,
                            track.latency_ms if track else None))
        return track

    async def probe_candidate(self, domain: Domain | str, key: str,
                              provider: str | None = None) -> tuple[Candidate, HealthResult]:
        """Build, probe and stop a candidate in this process (no host needed)."""
        ref = self.known(domain, key)
        cand = self.lifecycle.target(ref, provider, None)
        return cand, await self.lifecycle.probe_candidate(cand)

    # -- persistence for other processes ---------------------------------------------------
    def _serving_refs(self) -> list[ComponentRef]:
        return [s.ref for s in self.lifecycle.slots() if s.current is not None]

    def running_providers(self) -> int:
        """How many providers this process runs now: what stopping it stops (the console asks
        before quitting as the host, naming this count). 0 in a process that does not host."""
        return sum(1 for slot in self.lifecycle.slots() if slot.current is not None)

    # -- the status every front door shows, and the history views (status_view.py) ---------
    def components(self, refs: list[ComponentRef] | None = None) -> list[ComponentStatus]:
        """Status of every key (or of `refs`): StatusView.components."""
        return self.status_view.components(refs)

    def health_track(self, ref: ComponentRef) -> HealthTrack | None:
        """`ref`'s health track, here or as the host stored it: StatusView.health_track."""
        return self.status_view.health_track(ref)

    def component_history(self, domain: Domain | str, key: str) -> ComponentHistory:
        """A key's health samples and journal markers: StatusView.component_history."""
        return self.status_view.component_history(domain, key)

    def candidate_records(self, domain: Domain | str, key: str,
                          window_s: float = HISTORY_WINDOW_S) -> dict[str, CandidateRecord]:
        """Each candidate's last gate and recent failures: StatusView.candidate_records."""
        return self.status_view.candidate_records(domain, key, window_s)

    def _on_health(self, ref: ComponentRef, provider: str, result: HealthResult) -> None:
        self.candidate_health[(ref, provider)] = result
        self.health.record(ref, provider, result)

    def _on_gate(self, ref: ComponentRef, provider: str, result: HealthResult) -> None:
        self.candidate_health[(ref, provider)] = result

    def _slot_changed(self, slot: Slot) -> None:
        self._changed(slot.ref)
        self.snapshots.slot_changed(slot)

    def _health_changed(self, track: HealthTrack) -> None:
        self._changed(track.ref)
        self.snapshots.health_changed(track)

    def flush_snapshots(self) -> None:
        """Write the health snapshots waiting to be written (SnapshotWriter.flush)."""
        self.snapshots.flush()

    def store_write(self, fn: Callable[[Any], Any], value: Any) -> None:
        """Write through the store; a failure is counted (store_failures), never raised."""
        try:
            fn(value)
        except StoreError as exc:
            self._store_failed(exc)


# What only a host imports, lazily (telemetry, remote manifests and their crypto, the settings
# watcher): ~300 modules that, imported on the event loop as start() reaches them, stalled it
# for 100-150 ms. Imported on a thread first, the loop keeps turning (the GIL changes hands
# every few milliseconds) and start() then finds them in sys.modules.
HOST_MODULES = ("oneiric_core.telemetry", "oneiric_core.telemetry_config", "oneiric_core.telemetry_export",
                "oneiric_core.telemetry_metrics", "oneiric_core.remote.manifest", "oneiric_core.remote.signing",
                "oneiric_core.remote.upstream", "watchdog.observers")


def _warm_host_imports() -> None:
    import importlib

    for name in HOST_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing: start() says so where it needs it
            pass


def _as_principal(actor: Principal | str | None, default: Principal) -> Principal:
    """A front door passes the verified Principal; the engine's own callers (the settings
    watcher, runbooks, library code, tests) may name one, which the engine takes on their word."""
    if actor is None:
        return default
    if isinstance(actor, Principal):
        return actor
    return Principal.named(actor)


__all__ = ["HEARTBEAT_S", "ActivityState", "ComponentStatus", "Engine", "HostBusy"]
