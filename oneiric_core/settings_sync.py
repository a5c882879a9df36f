"""Settings sync: the host's settings watcher, and what a settings file that settles on disk does.

Why a service of its own: watching the files, reloading one that changed, journaling what it
changed and turning each key whose winner moved into a swap proposal is one job with its own
state (the watcher, the files present, the reload lock), and it was a third of the Engine. The
Engine composes it (`Engine.settings_sync`) and keeps thin delegating methods
(`watcher_status`, `settings_file_changed`, `watcher`) so its callers do not change.

While a proposal waits, the resolver already follows the files (`winner` is what the settings
ask for, in this process and in every CLI process that reads the same files), and the
lifecycle keeps the old provider serving until the proposal is approved;
ComponentStatus.proposal says why the two differ. What it needs of the engine is named by
`ports.SettingsSyncEngine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .domains import Candidate, ComponentRef, Domain
from .errors import NotFound, OneiricError
from .events import Event, Severity
from .host_session import HEARTBEAT_S
from .lifecycle import LifecycleOptions
from .principal import Principal
from .settings import APP_FILE, AppSettings, ConfigProblem, LimitsOptions, SettingsLoader, SettingsSnapshot
from .store import StoreError
from .watcher import QUIET_S, SettingsWatcher, WatcherStatus

if TYPE_CHECKING:
    from .ports import SettingsSyncEngine

WATCHER_SOURCE = "settings-watcher"  # the `source` of proposals made from settings edits
WATCHER_META = "settings_watcher"  # store meta key: the host's watcher state, for clients


class SettingsSync:
    """The host's settings watcher and the reload of each file it reports settled."""

    def __init__(self, engine: SettingsSyncEngine, loader: SettingsLoader, *, quiet_s: float = QUIET_S) -> None:
        self._engine = engine
        self._loader = loader
        self.quiet_s = quiet_s
        self.watcher: SettingsWatcher | None = None  # while hosting
        self._present: set[str] = set()  # settings files that existed when last looked at
        self._reload_lock = asyncio.Lock()  # the watcher's reloads, one at a time

    @staticmethod
    def file_names() -> list[str]:
        return [APP_FILE, *(domain.settings_file for domain in Domain)]

    # -- the watcher -------------------------------------------------------------------------
    def start(self) -> None:
        """Host only: watch the settings directory. A watcher that cannot start (no inotify
        watches left, say) is journaled and shown as down; the host keeps serving."""
        engine = self._engine
        directory = self._loader.settings_dir
        names = self.file_names()
        self._present = {name for name in names if (directory / name).exists()}
        watcher = SettingsWatcher(directory, names,
                                  lambda path: engine.spawn(self.file_settled(path), "oneiric-settings-reload"),
                                  on_down=self._watcher_down, quiet_s=self.quiet_s)
        self.watcher = watcher
        try:
            watcher.start()
        except OSError as exc:
            watcher.down_reason = f"cannot watch {directory}: {exc.strerror or exc}"
            self._watcher_down(watcher.down_reason)
            return
        engine.emit(Event("watcher-started", f"settings watcher started: watching {directory} ({watcher.backend})",
                          actor=engine.actor, data={"directory": str(directory), "backend": watcher.backend}))
        self._publish()
        engine.spawn(self._check_watcher(), "oneiric-settings-watcher-check")
        # Edits saved between loading the settings and watching them are caught up now
        # (unchanged files are a no-op).
        for name in names:
            self.file_changed(directory / name)

    async def _check_watcher(self) -> None:
        """Each heartbeat: notice a watcher thread that died without an event; once."""
        while self.watcher is not None and self.watcher.check() is None:
            await asyncio.sleep(HEARTBEAT_S)

    def _watcher_down(self, reason: str) -> None:
        directory = self._loader.settings_dir
        self._engine.emit(Event("watcher-error", f"settings watcher is down ({reason}); settings edits on disk are "
                                "not picked up until the host restarts", Severity.ERROR, actor=self._engine.actor,
                                data={"directory": str(directory), "reason": reason}))
        self._publish()

    def stop(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is None:
            return
        was_alive = watcher.alive
        watcher.stop()
        if was_alive:
            self._engine.emit(Event("watcher-stopped",
                                    f"settings watcher stopped: no longer watching {watcher.directory}",
                                    actor=self._engine.actor,
                                    data={"directory": str(watcher.directory), "changes": watcher.changes}))
        self._publish(WatcherStatus("down", str(watcher.directory), "the host stopped", time.time()))

    def _publish(self, status: WatcherStatus | None = None) -> None:
        """Record the watcher's state in the store: `oneiric status` runs in another process."""
        status = status or self.status()
        record = {**status.to_dict(), "pid": os.getpid(), "hostname": socket.gethostname(),
                  "updated_at": time.time()}
        store = self._engine.store
        self._engine.store_write(lambda value: store.set_meta(store.node_key(WATCHER_META), value), record)

    def status(self) -> WatcherStatus:
        """Whether settings edits on disk are being picked up: from the watcher itself in the
        host, else from what the live host recorded in the store."""
        engine = self._engine
        directory = str(self._loader.settings_dir)
        if engine.is_host:
            if self.watcher is None:
                return WatcherStatus("down", directory, "the host is still starting")
            return self.watcher.status()
        lease, alive = engine.host()
        if lease is None or not alive:
            return WatcherStatus("down", None, "no host running")
        try:
            raw = engine.store.get_meta(engine.store.node_key(WATCHER_META))
        except StoreError as exc:
            return WatcherStatus("down", None, f"cannot read the state store: {exc}")
        if not isinstance(raw, dict) or raw.get("pid") != lease.pid or raw.get("hostname") != lease.hostname:
            return WatcherStatus("down", None, f"the host (pid {lease.pid} on {lease.hostname}) "
                                 "reports no settings watcher")
        return WatcherStatus.from_dict(raw)

    # -- a file settled ----------------------------------------------------------------------
    def file_changed(self, path: str | Path) -> None:
        """A settings file settled on disk: reload and apply it now, on this thread (the
        host's watcher goes through `file_settled`, which parses off the loop).

        Reloads just that file. Invalid: journal config-invalid (file:line:column) and keep
        its last good version in force. Valid: journal config-changed (config-recovered after
        a bad version), apply it, and turn each key whose winner it changed into a swap
        proposal through request_swap, so what serves changes only as the approvals policy
        allows. A deleted file keeps its last good version. Unchanged content does nothing,
        so a spurious event or a re-save never journals twice."""
        file = Path(path)
        if not self._gone(file):
            self._reloaded(file, *self._reload(file))

    async def file_settled(self, path: str | Path) -> None:
        """The watcher's callback on the host: the same as file_changed, with the file
        parsed in a worker thread. A file the fast parser hands to the line-exact one can
        take a minute at the size limit; on the loop that would stall heartbeats past the
        lease's staleness (another process could take over) and every console and command.
        Reloads run one at a time, in the order the files settled."""
        file = Path(path)
        async with self._reload_lock:
            if not self._gone(file):
                parsed = await asyncio.to_thread(self._reload, file)
                self._reloaded(file, *parsed)

    def _gone(self, file: Path) -> bool:
        if file.exists():
            self._present.add(file.name)
            return False
        if file.name in self._present:
            self._present.discard(file.name)
            self._engine.emit(Event("config-changed", f"{path_label(file)} was deleted; its last good version stays "
                                    "in force (a restart would use defaults)", Severity.WARNING,
                                    actor=self._engine.actor, data={"file": str(file), "deleted": True}))
        return True

    def _reload(self, file: Path) -> tuple[Any, SettingsSnapshot, list[ConfigProblem], Any]:
        """Parse one file (any thread: the loader holds its own lock): the last good model
        before, the new snapshot, the file's problems, the last good model after."""
        before = self._loader.last_good(file)
        snap, problems = self._loader.reload_file(file)
        return before, snap, problems, self._loader.last_good(file)

    def _reloaded(self, file: Path, before: Any, snap: SettingsSnapshot,
                  problems: list[ConfigProblem], after: Any) -> None:
        engine = self._engine
        name, label = file.name, path_label(file)
        before_problems = [p for p in engine.settings.problems if Path(p.file).name == name]
        engine.settings = snap
        if problems:
            if problems != before_problems:
                engine.journal_problems(problems)
            return
        if before_problems:
            engine.emit(Event("config-recovered", f"{label} is valid again; its current content is in force",
                              actor=engine.actor, data={"file": str(file),
                                                        "was": [p.to_dict() for p in before_problems]}))
        if after != before:
            self._apply_file_change(file, label, before, after, snap)
        if name == APP_FILE and _limits(before) != _limits(after):
            # A file refused for its size or nesting may pass now (or fail): read those again.
            for other in self.file_names():
                if other != APP_FILE and any(Path(p.file).name == other for p in engine.settings.problems):
                    self.file_changed(file.parent / other)

    def _apply_file_change(self, file: Path, label: str, before: Any, after: Any,
                           snap: SettingsSnapshot) -> None:
        engine = self._engine
        resolver = engine.resolver
        refs_before = resolver.refs()
        winners_before = {ref: resolver.winner(ref) for ref in refs_before}
        selections_before = resolver.selections()
        live: list[str] = []
        later: list[str] = []
        if file.name == APP_FILE and isinstance(after, AppSettings):
            live, later = self._apply_app_settings(before if isinstance(before, AppSettings) else AppSettings(), after)
        changed = engine.apply_settings(snap)
        stale = []  # serving providers whose own settings changed: they keep the old ones
        for slot in engine.lifecycle.slots():
            cand, winner = (slot.current.candidate if slot.current else None), resolver.winner(slot.ref)
            if cand is not None and winner is not None and winner.ident == cand.ident \
                    and winner.settings != cand.settings:
                stale.append(f"{slot.ref} ({cand.provider})")
        message = f"{label} changed on disk and was reloaded"
        if live:
            message += f"; in force now: {', '.join(live)}"
        if later:
            message += f"; takes effect at the next host start: {', '.join(later)}"
        if stale:
            message += f"; new provider settings for {', '.join(stale)} take effect at its next swap or restart"
        engine.emit(Event("config-changed", message, actor=engine.actor,
                          data={"file": str(file), "applied": live, "restart_needed": later, "stale": stale}))
        for ref in sorted(changed, key=str):
            old, new = selections_before[ref.domain].get(ref.key), resolver.selection(ref)
            engine.emit(Event(
                "selection-changed", f"{ref} selection {old or 'none'} -> {new or 'none'} ({label})",
                Severity.INFO, ref.domain, ref.key, new, engine.actor,
                data={"from": old, "to": new, "file": str(file)},
            ))
        touched = set(changed) | {
            ref for ref in set(refs_before) | set(resolver.refs())
            if _ident(winners_before.get(ref)) != _ident(resolver.winner(ref))
        }
        if touched and engine.is_host:
            self._propose_changes(sorted(touched, key=str), label, selections_before)

    def _apply_app_settings(self, old: AppSettings, new: AppSettings) -> tuple[list[str], list[str]]:
        """Put the app.yml options a running host can change in force; name the others."""
        engine = self._engine
        before, after = dataclasses.asdict(old), dataclasses.asdict(new)
        changed = [k for k in after if after[k] != before.get(k)]
        engine.approvals.mode = new.approvals.mode
        engine.approvals.two_person = new.approvals.two_person
        engine.approvals.expire_after_s = new.approvals.expire_after_s
        engine.lifecycle.options = LifecycleOptions(**dataclasses.asdict(new.lifecycle))
        engine.health.interval_s = new.health.interval_s
        live, later = [], []
        for key in changed:
            if key in ("approvals", "lifecycle", "stack_order", "journal", "limits"):
                live.append(key)
            elif key == "remote":
                engine.remote.reconfigure(new.remote)
                live.append(key)
            elif key == "health":
                if before["health"]["interval_s"] != after["health"]["interval_s"]:
                    live.append("health.interval_s")
                if before["health"]["history"] != after["health"]["history"]:
                    later.append("health.history")
            else:
                later.append(key)
        return live, later

    # -- proposals from settings edits -------------------------------------------------------
    def _propose_changes(self, refs: list[ComponentRef], label: str,
                         selections_before: dict[Domain, dict[str, str]]) -> None:
        """Each key whose winner a settings change moved away from what serves becomes one
        proposal; an older watcher proposal for that key that the files no longer ask for is
        withdrawn (rejected as superseded), and a key the files bring back to what serves
        gets none."""
        engine = self._engine
        try:
            waiting = [p for p in engine.approvals.pending() if p.source == WATCHER_SOURCE and p.decided_by is None]
        except StoreError as exc:
            engine.store_error = str(exc)
            waiting = []
        for ref in refs:
            target = engine.resolver.winner(ref)
            mine = [p for p in waiting if (p.domain, p.key) == (ref.domain.value, ref.key)]
            for p in mine:
                if target is None or (p.to_provider, p.to_source) != (target.provider, target.source):
                    now = f"asks for {target.provider}" if target else "has no candidate for it"
                    assert p.id is not None  # read from the store
                    with contextlib.suppress(OneiricError):
                        engine.approvals.reject(p.id, Principal.internal(WATCHER_SOURCE),
                                                f"superseded: {label} now {now}")
            if target is None:
                continue
            slot = engine.lifecycle.find_slot(ref)
            serving = slot.current.candidate if slot and slot.current else None
            heading = slot.pending if slot else None
            if (serving is not None and serving.ident == target.ident) or \
                    (heading is not None and heading.ident == target.ident):
                continue
            if any((p.to_provider, p.to_source) == (target.provider, target.source) for p in mine):
                continue
            old, new = selections_before[ref.domain].get(ref.key), engine.resolver.selection(ref)
            if old != new and new == target.provider:
                reason = f"{label} selects {new}"
            elif old != new and new:
                reason = f"{label} selects {new}, which is not registered; ranking picked {target.provider}"
            elif old != new:
                reason = f"{label} no longer selects {old}; {self._why(ref)}"
            else:
                reason = f"{label} changed: {self._why(ref)}"
            engine.spawn(self._propose_swap(ref, target, reason), f"oneiric-propose-{ref}")

    def _why(self, ref: ComponentRef) -> str:
        try:
            ranked = self._engine.resolver.explain(ref.domain, ref.key).ranked
        except NotFound:
            return "no candidate"
        return f"{ranked[0].candidate.provider} wins ({ranked[0].reason})" if ranked else "no candidate"

    async def _propose_swap(self, ref: ComponentRef, target: Candidate, reason: str) -> None:
        engine = self._engine
        try:
            await engine.request_swap(ref.domain, ref.key, target.provider, to_source=target.source,
                                      source=WATCHER_SOURCE, reason=reason, actor=engine.actor)
        except OneiricError as exc:
            engine.emit(Event("watcher-error", f"{ref}: {reason}, but no swap was proposed: {exc}", Severity.WARNING,
                              ref.domain, ref.key, target.provider, engine.actor, data={"reason": reason}))


def path_label(path: Path) -> str:
    """How settings paths appear in messages: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _ident(cand: Candidate | None) -> tuple[Any, ...] | None:
    return cand.ident if cand is not None else None


def _limits(app: Any) -> LimitsOptions:
    """app.yml's input limits (the defaults for a file never loaded): what a change compares."""
    return app.limits if isinstance(app, AppSettings) else LimitsOptions()
