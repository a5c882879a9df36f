"""OneiricApp: the engine and the console on one asyncio loop.

On mount the app subscribes to the engine's event bus and its change notifications, then
starts the engine as the host for its state directory (activating providers happens in
a worker, so the first frame never waits for it). If another process already hosts the
state directory, the console attaches read-only and follows the store instead.
Live updates are pushed by the engine and coalesced here: a burst of events becomes one
batch every 50 ms, a burst of changes one refresh every 250 ms.

Outside text (operator names, notes, provider messages) is plain text on every screen
(§12): the panes build their renderables with oneiric_core.text, every notification is
plain text here (`notify`), and a line filter drops any control character still left.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.content import Content
from textual.markup import MarkupError
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerCancelled, WorkerFailed, get_current_worker

from oneiric_core.candidate_record import CandidateRecord, last_known_health
from oneiric_core.commands import CommandResult
from oneiric_core.component_history import ComponentHistory
from oneiric_core.domains import ComponentRef
from oneiric_core.engine import ComponentStatus, Engine, HostBusy
from oneiric_core.errors import OneiricError
from oneiric_core.events import Event
from oneiric_core.journal_view import Notice, notice_for
from oneiric_core.operator_port import Operator, connect
from oneiric_core.provider_calls import contain_task_exits
from oneiric_core.resolver import Explanation
from oneiric_core.store import LeaseInfo, StoreError
from oneiric_core.text import multi_line, one_line

from .control_filter import HiddenCharacterFilter
from .header import Part, fit
from .main_screen import MUTATING, MainScreen
from .messages import ComponentsChanged, EngineEvents, EngineReady
from .mode import ConsoleMode
from .palette import SMALL_KEYS, palette_entries
from .palette_keys import KeyCommands
from .screens.confirm import ConfirmDialog
from .themes import theme_refusal
from .typing_guard import HOLD_S, Typeahead, TypingGuard, Verdict, is_text_box
from .upkeep import UPKEEP_EVERY_S, Upkeep, read_upkeep
from .widgets.approvals import ApprovalsTable
from .widgets.component_tree import ComponentTree
from .widgets.health_table import HealthTable
from .widgets.remote_table import RemoteTable
from .widgets.swap_log import SwapLog

if TYPE_CHECKING:
    from .console_port import ConsoleState

EVENT_BATCH_S = 0.05
CHANGE_BATCH_S = 0.25
HISTORY = 500
# Journal kinds after which the console re-reads state. Lifecycle and health changes come
# through engine.watch(); these are the ones only the journal announces.
RESHAPING_KINDS = {"config-changed", "component-registered", "component-removed",
                   "remote-sync-complete"}  # keys and candidates may come or go
REMOTE_KINDS = {"remote-sync-started", "remote-sync-complete", "remote-sync-error", "circuit-open",
                "circuit-closed", "signature-verification-failed", "digest-check-failed"}
UPKEEP_KINDS = {"maintenance-done", "config-changed"}  # a task done, maintenance.yml or a setting edited
TELEMETRY_KINDS = {"telemetry-unavailable", "telemetry-export-failed", "telemetry-export-recovered"}
KEY_STATE_KINDS = {"activity-changed", "selection-changed", "swap-requested", "swap-approved",
                   "swap-rejected", "swap-expired", "swap-interrupted"}  # one key's marks change
# The kinds that change which proposals are pending. The other swap kinds (a swap started or
# ended) re-read them too, as a chance to retire the expired ones, but not while the host
# activates: each activation is a swap-started and a swap-complete, and reading the
# proposals from the store 20 times a second on the loop waited behind the providers'
# writes (up to ~95 ms at 50,000 components). EngineReady re-reads them once activation is done.
PROPOSAL_KINDS = {"swap-requested", "swap-approved", "swap-rejected", "swap-expired", "swap-interrupted"}
REFRESH_CHUNK = 500  # keys read and drawn per turn of the loop when refreshing every component
FREEZE_EVERY_S = 0.5  # while starting as the host: see _freeze_while_starting
FULL_GC_EVERY = 100  # middle-generation collections between full ones (Python's default: 10)
NOTICES_KEPT = 500  # the session's notifications `N` lists
COMMAND_WAIT_S = 60.0  # client mode: how long an action waits for the host to answer


class OneiricApp(App):
    CSS_PATH = "console.tcss"
    COMMANDS = App.COMMANDS | {KeyCommands}  # per-key entries at scale (palette_keys.py)
    TITLE = "Oneiric Console"
    BINDINGS = [
        Binding("ctrl+q", "quit_console", "Quit", show=False, priority=True, id="app.hard_quit"),
    ]

    def __init__(self, engine: Engine, *, read_only: bool = False, autostart: bool = True,
                 may_host: bool = True, read_only_reason: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        """`autostart=False` shows the configuration without starting providers (snapshot tests
        use it so nothing time-dependent is on screen). `may_host=False` makes a console that
        is only ever a client (a web session, web_tab.py): it follows whichever process hosts
        and, while none does, waits for one instead of taking over. `read_only_reason` ends
        the sentence a refused key shows ("read-only: p would pause adapter/cache (...)").
        `clock` is the wall clock the incident screens read (ages, update reminders), time.time
        unless given: tests move it forward instead of waiting."""
        # What exists now (imports, settings, the registry) lives as long as the console: keep
        # the collector from walking it again in every full collection while the first frame
        # is built (with 10,000 candidates each such walk took tens of milliseconds).
        gc.freeze()
        super().__init__()
        self.engine = engine
        self.clock: Callable[[], float] = clock or time.time
        self.autostart = autostart
        self.may_host = may_host
        self.read_only_reason = read_only_reason
        if read_only:
            engine.read_only = True
        self.mode = ConsoleMode.STARTING if may_host else ConsoleMode.ATTACHING
        self.host_detail = ""
        self.statuses: dict[ComponentRef, ComponentStatus] = {}
        self.swapping: set[ComponentRef] = set()
        self._dirty: set[ComponentRef] = set()
        self._flush_pending = False
        self._last_event_id = 0
        self._stop_watch: Callable[[], None] | None = None
        self._stopped = False
        self._leaving = False
        self._starter: Worker[None] | None = None
        self._follow_timer: Timer | None = None
        self._holder: tuple[int, str] | None = None  # the host a client is attached to: (pid, hostname)
        # How actions are carried out (operator_port.py): in this process until another
        # process turns out to host, then over its socket; in this process again on takeover.
        self.operator: Operator = connect(engine, read_only=engine.read_only, wait=COMMAND_WAIT_S)
        self._hidden_filter = HiddenCharacterFilter()
        self._typing = TypingGuard()  # keys meant for a text box that lost focus (typing_guard.py)
        self._typeahead = Typeahead()  # keys typed on after `:` or `/`, before the box has focus
        self.switch_context: str | None = None  # `:ctx NAME`: the console starts again there (run_console)
        self.switch_node: str | None = None  # `enter` on a node of `:fleet`, `:node NAME`: the same, that node's
        # A fleet store (PostgreSQL) holds every node's rows: the panes show this console's node,
        # the journal view and the notifications every node's, with a NODE column.
        self.fleet_store = not engine.store.backend.holds_one_node
        self._asking_to_quit = False
        self.upkeep: Upkeep | None = None  # the last reading of the maintenance calendar and upstream notices
        self._pending = 0
        self.notices: deque[Notice] = deque(maxlen=NOTICES_KEPT)  # this session's, for `N`
        self._freezer: Timer | None = None

    # -- state the screens read --------------------------------------------------------------
    @property
    def is_host(self) -> bool:
        return self.mode.hosting

    @property
    def can_change(self) -> bool:
        """Host: the engine acts. Client: the host acts on commands sent through the store."""
        return self.mode.may_act and not self.engine.read_only

    async def act(self, kind: str, **args: object) -> CommandResult:
        """Do `kind` through the Operator port: this process's engine when it hosts, the host's
        socket when another process hosts. Every action of the screens goes through here."""
        given: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
        return await self.operator.run(kind, **given)

    def explanation(self, ref: ComponentRef) -> Explanation | None:
        try:
            return self.engine.explain(ref.domain, ref.key)
        except OneiricError:
            return None

    def candidate_health(self, ref: ComponentRef, provider: str) -> tuple[str, str]:
        """Last known health of one candidate (candidate_record.last_known_health): live when
        it serves, else its last health gate in the journal, else what this process saw."""
        status = self.statuses.get(ref)
        seen = self.engine.candidate_health.get((ref, provider))
        return last_known_health(
            serving=(status.health, status.health_message) if status is not None and status.serving == provider
            else None,
            record=self.candidate_records(ref).get(provider),
            seen=(seen.status.value, seen.message) if seen is not None else None,
        )

    def candidate_records(self, ref: ComponentRef) -> dict[str, CandidateRecord]:
        """Each candidate's last gate and failures in the window, from the journal ({} when
        the store cannot be read: the picker then shows what this process knows)."""
        try:
            return self.engine.candidate_records(ref.domain, ref.key)
        except OneiricError:  # the store cannot be read
            return {}

    def component_history(self, ref: ComponentRef) -> ComponentHistory | None:
        """`ref`'s history for the history view (None when the store cannot be read)."""
        try:
            return self.engine.component_history(ref.domain, ref.key)
        except OneiricError:  # the store cannot be read
            return None

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    # -- start and stop ----------------------------------------------------------------------
    def get_key_display(self, binding: Binding) -> str:
        """How every key is shown (key bar, help, dialogs): Textual's display where it is plain
        ASCII; where Textual draws a symbol many terminal fonts lack (backspace, enter, the
        arrows), a word for it or the key's own name."""
        display = super().get_key_display(binding)
        if display.isascii():
            return display
        return {"backspace": "bksp"}.get(binding.key, binding.key)

    def get_line_filters(self):
        """Textual's filters (NO_COLOR, dimming), then the one that keeps control characters
        off the terminal (control_filter)."""
        return [*super().get_line_filters(), self._hidden_filter]

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification of the console is plain text: messages and titles nearly always
        carry outside text (an error naming a provider, a note, an operator), so control
        characters show as escapes and markup is never interpreted. A caller that passed
        markup (ours: constant sentences; Textual's own, "Press [b]ctrl+q[/b] to quit") gets
        its words without the styles. Widgets' and screens' `notify` come here too."""
        if markup:
            try:
                message = Content.from_markup(message).plain
            except MarkupError:
                pass
        kwargs = {} if timeout is None else {"timeout": timeout}
        super().notify(multi_line(message), title=one_line(title), severity=severity, markup=False, **kwargs)

    async def on_event(self, event: events.Event) -> None:
        """Every key passes the typing guard before Textual routes it to the bindings: a key
        typed just after a text box lost focus (not closed with a key) goes back into that box,
        or is dropped when the box is gone, and never acts as a command."""
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._typeahead.hold(event, self.focused):
                if self._typeahead.held == 1:  # the first: a box that never opens lets them go
                    self.set_timer(HOLD_S, self._release_typeahead)
                return
            self._typeahead.opened_by(event, self.focused)
            route = self._typing.route(event, self.focused, self.screen)
            if route.verdict is Verdict.DROP:
                if route.first:
                    self.notify(f"Ignored {event.character!r}: typed as the text box lost focus. Keys act "
                                "again after a second without typing.", severity="warning", timeout=4,
                                markup=False)
                return
            if route.verdict is Verdict.REFOCUS and route.box is not None:
                # At once, so the key below goes to it; as a focus *restored* (from_app_focus), so
                # the box keeps its text and cursor instead of selecting all for the key to replace.
                route.box.screen.set_focus(route.box, from_app_focus=True)
        await super().on_event(event)

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self._typing.lost_focus(event.widget)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if is_text_box(event.widget):
            self._release_typeahead()  # the box is open: typeahead ends (what was held goes into it)

    def _release_typeahead(self) -> None:
        """The keys typed after `:` or `/`, handled now: into the box that opened (it has
        focus), or as typed when none did."""
        for key in self._typeahead.release():
            self.post_message(events.Key(key.key, key.character))

    def get_default_screen(self) -> MainScreen:
        # The main screen is the app's first screen, composed and painted with the app itself:
        # pushed later (from on_mount) it was laid out and painted once more before the first frame.
        return MainScreen()

    def on_mount(self) -> None:
        keymap = self.engine.settings.app.keymap
        if keymap:
            self.set_keymap(dict(keymap))

    def main_screen_ready(self) -> None:
        """Called by MainScreen once its panes exist: load history, go live, start the engine."""
        loop = asyncio.get_running_loop()
        contain_task_exits(loop)  # a provider's own task raising SystemExit must not end the console
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, lambda: self.call_later(self._shutdown))
            except (NotImplementedError, RuntimeError):
                pass
        self._load_initial()
        self._stop_watch = self.engine.watch(self._on_engine_change)
        self._pump_events()
        self.set_interval(1.0, self._tick)
        # After the first frame, in a thread: reading maintenance.yml must not delay the first paint.
        self.call_after_refresh(self.refresh_upkeep)
        self.set_interval(UPKEEP_EVERY_S, self.refresh_upkeep)
        if self.autostart:
            # After the first frame: activating providers must never delay the first paint.
            self.call_after_refresh(self._begin_start)
            self._freezer = self.set_interval(FREEZE_EVERY_S, self._freeze_while_starting)

    def _own(self, events: list[Event]) -> list[Event]:
        """The events of this console's node (on a fleet store the journal holds every node's)."""
        if not self.fleet_store:
            return events
        node = self.engine.node
        return [e for e in events if e.node in (None, node)]

    def _load_initial(self) -> None:
        history = self.engine.journal(limit=HISTORY, node=self.engine.node if self.fleet_store else None)
        if history:
            self._last_event_id = history[-1].id or 0
        self.main.query_one(SwapLog).add(history)
        self.refresh_all()

    def _freeze_while_starting(self) -> None:
        """While providers are activated, what was built in the last moments (providers, their
        slots, health tracks, rows) lives as long as the console: move it out of the
        collector's way, after a young collection has freed the short-lived cycles. Without
        this every full collection walks the growing heap: with 12,500 activations (50,000
        components) such walks were pauses of 0.3-0.6 s, and grew with the heap."""
        if self.mode != ConsoleMode.STARTING or self._stopped:
            if self._freezer is not None:
                self._freezer.stop()
            return
        gc.collect(1)
        gc.freeze()

    def _begin_start(self) -> None:
        if self._stopped:
            return
        if self.may_host:
            # From the start of activation, not only after it: a full collection of what the
            # first frame built (12,500 statuses and rows) was a 15-20 ms pause early in it.
            _rarer_full_collections()
            self._starter = self._start_engine()
            return
        lease, alive = self.engine.host()
        if alive and lease is not None:
            self._attach_to_host(lease)
        else:
            self._wait_for_host()
        self._follow()

    def _follow(self) -> None:
        """Client mode: read what the host writes as soon as the store says it changed (a
        Listener: PostgreSQL's NOTIFY, a SQLite file's commits), and every second anyway."""
        self._follow_timer = self.set_interval(1.0, self.follow_store)
        self._watch_store()

    @work(thread=True, group="store-watch", exclusive=True, exit_on_error=False)
    def _watch_store(self) -> None:
        worker = get_current_worker()
        try:
            listener = self.engine.store.listen()
        except StoreError:
            return  # the one-second timer still follows
        try:
            while not worker.is_cancelled and not self._stopped and self._follow_timer is not None:
                if listener.wait(0.5) and not self._stopped:
                    self.call_from_thread(self.follow_store)
        finally:
            listener.close()

    def _attach_to_host(self, holder: LeaseInfo) -> None:
        """Another process hosts: show its state, send actions to it."""
        self.mode = ConsoleMode.CLIENT
        self._holder = (holder.pid, holder.hostname)
        self.operator = connect(self.engine, read_only=self.engine.read_only, wait=COMMAND_WAIT_S)
        self.host_detail = f"attached to pid {holder.pid} on {holder.hostname}"
        self.post_message(EngineReady(ConsoleMode.CLIENT, self.host_detail))

    def _wait_for_host(self) -> None:
        """A console that may not host, with no host running: show the stored state and
        attach once a host is there (follow_store looks every second)."""
        self.mode, self.host_detail = ConsoleMode.WAITING, "waiting for a host"
        self.post_message(EngineReady(ConsoleMode.WAITING, self.host_detail))

    @work(group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        try:
            await self.engine.start()
        except HostBusy as exc:
            self._attach_to_host(exc.holder)
            self._follow()
            return
        except OneiricError as exc:
            self.mode = ConsoleMode.FAILED
            self.host_detail = f"engine failed to start: {exc}"
            self.post_message(EngineReady(ConsoleMode.FAILED, self.host_detail))
            return
        self.mode = ConsoleMode.HOST
        self.operator = connect(self.engine, read_only=self.engine.read_only, wait=COMMAND_WAIT_S)
        self.host_detail = f"pid {os.getpid()}"
        self.post_message(EngineReady(ConsoleMode.HOST, self.host_detail))

    def exit(self, result=None, return_code: int = 0, message=None) -> None:
        self._leaving = True
        super().exit(result, return_code, message)

    async def _shutdown(self) -> None:
        """Stop providers cleanly and release the lease, then leave (unless already leaving,
        in which case the result given to exit() stands)."""
        await self._stop_engine()
        if not self._leaving:
            self.exit()

    async def _stop_engine(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._stop_watch:
            self._stop_watch()
        starter = self._starter
        if starter is not None and not starter.is_finished:
            # Quitting while providers are still being activated: stop that first, so
            # nothing keeps using the engine after it is closed.
            starter.cancel()
            try:
                await starter.wait()
            except (WorkerCancelled, WorkerFailed):  # either way it is over
                pass
        try:
            await self.engine.stop()
        finally:
            self.engine.close()

    async def on_unmount(self) -> None:
        await self._stop_engine()

    async def action_quit_console(self) -> None:
        """`q`: a client (or a console that never started a host) leaves at once, since the
        providers run elsewhere or not at all; the host asks first, saying what stops."""
        if not self.is_host:
            await self._shutdown()
            return
        if self._asking_to_quit:
            return  # the question is on screen already (ctrl+q pressed again)
        self._asking_to_quit = True
        self.push_screen(ConfirmDialog("Quit and stop this host?", self._what_quitting_stops(), "Quit"),
                         self._quit_answered)

    def _what_quitting_stops(self) -> str:
        running = self.engine.running_providers()
        body = f"Stops {running} provider{'' if running == 1 else 's'}"
        if self.mode == ConsoleMode.STARTING:
            body += " and the ones still starting"
        body += "; `oneiric run` keeps them running without a console."
        if self.swapping:
            swaps = ", ".join(sorted(str(r) for r in self.swapping))
            body += (f" A swap of {swaps} is still running; quitting stops it part-way "
                     "(the old provider keeps serving).")
        return body

    def open_node(self, name: str) -> None:
        """Show node `name`'s panes (`enter` on a node of `:fleet`, `:node NAME`): the console
        starts again on the same settings and store, as a client of that node's host (a client
        only: it never hosts another node, and waits while that node has no host). As the host
        of this node it asks first, saying what stops."""
        if name == self.engine.node:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return

        def leave(yes: bool | None) -> None:
            if yes:
                self.switch_node = name
                self.call_later(self._shutdown)

        if not self.is_host:
            leave(True)
            return
        body = (f"This console hosts node {one_line(self.engine.node)} here. {self._what_quitting_stops()} "
                f"To keep it, open node {one_line(name)} from another terminal: oneiric console --node {name}")
        self.push_screen(ConfirmDialog(f"Open node {one_line(name)}?", body, confirm_label="Open"), leave)

    def _quit_answered(self, ok: bool | None) -> None:
        self._asking_to_quit = False
        if ok:
            self.call_later(self._shutdown)

    # -- live data ---------------------------------------------------------------------------
    @work(group="events", exit_on_error=False)
    async def _pump_events(self) -> None:
        """Forward bus events in batches: one message per 50 ms at most, however busy."""
        subscription = self.engine.subscribe(maxsize=5000)
        try:
            while True:
                first = await subscription.get()
                await asyncio.sleep(EVENT_BATCH_S)
                self.post_message(EngineEvents([first, *subscription.drain()]))
        finally:
            subscription.close()

    def _tick(self) -> None:
        """Once a second: age the 'changed' column (a clock on screen, not engine data)."""
        if self._stopped:
            return
        self.main.query_one(HealthTable).tick(self.engine.health_track)
        self.refresh_remote()  # ages and retry times move on
        if self.is_host and not self.engine.store.backend.holds_one_node:
            self.refresh_approvals()  # other nodes' proposals come through the store, not this bus
        self.remind_updates()

    def remind_updates(self) -> None:
        """The commander's reminder: a notification when the next status update of an incident
        this operator commands is due (the severity's cadence; runbooks/board.py), recorded on
        its timeline so that it is given once per due time."""
        if not self.can_change:
            return
        from oneiric_core.runbooks.board import due_updates, record_reminder  # not needed for the first frame
        from oneiric_core.runbooks.incidents import Incidents

        try:
            incidents = Incidents(self.engine)
            now = self.clock()
            for due in due_updates(incidents, commander=self.engine.actor, now=now):
                record_reminder(incidents, due, actor=self.engine.actor, now=now)
                self.notify(f"{due.sentence()} M prepares it (I lists the incidents).", title="Status update due",
                            severity="warning", timeout=30, markup=False)
        except OneiricError:
            return

    def action_journal(self, at: float | None = None) -> None:
        """`L`: the journal, full screen (screens/journal.py); with `at` (`:log at 14:02`), the
        cursor on the first event at or after that moment."""
        from .screens.journal import JournalScreen  # on first use: not on the first frame's path

        if not self.is_screen_installed("journal"):
            self.install_screen(JournalScreen(), "journal")
        screen = self.get_screen("journal")
        if self.screen is not screen:
            self.push_screen("journal")
        if at is not None:
            def jump() -> None:
                self.notify(screen.jump_to(at), markup=False)  # type: ignore[attr-defined]

            screen.call_after_refresh(jump)

    def action_notifications(self) -> None:
        """`N`: the session's notifications, newest first, with their time (screens/notices.py)."""
        from .screens.notices import NoticesScreen

        self.push_screen(NoticesScreen(list(self.notices)))

    def _notice(self, events: list[Event]) -> None:
        """Ring and toast what the journal brings that this operator did not do
        (oneiric_core.journal_view.notice_for), and keep it for `N`."""
        engine = self.engine
        node = engine.node if self.fleet_store else None
        fresh = [n for e in events
                 if (n := notice_for(e, principal_id=engine.principal.id, actor=engine.actor, node=node))]
        for notice in fresh:
            self.notices.append(notice)
            self.notify(notice.message, title=notice.title, severity="warning", timeout=15, markup=False)
        if fresh:
            self.bell()

    def action_incidents(self) -> None:
        """`I`: the incidents view (every incident not closed), over whatever screen is shown."""
        from .screens.incidents_view import IncidentsScreen

        if not self.is_screen_installed("incidents"):
            self.install_screen(IncidentsScreen(), "incidents")
        if self.screen is not self.get_screen("incidents"):
            self.push_screen("incidents")

    def follow_store(self) -> None:
        """Client mode: the host lives in another process, so read what it wrote. When that
        host is gone (stopped, or its heartbeat went stale), this console takes over, or, if
        it may not host, waits for the next host; one that took over between two looks is
        attached to at once."""
        if self._stopped:
            return
        lease, alive = self.engine.host()
        if alive and lease is not None and (
                self.mode == ConsoleMode.WAITING
                or (self.mode == ConsoleMode.CLIENT and (lease.pid, lease.hostname) != self._holder)):
            self._attach_to_host(lease)  # a host came, or another took over between two looks
        elif not self.may_host and self.mode == ConsoleMode.CLIENT and not alive:
            gone = f"pid {lease.pid} on {lease.hostname}" if lease else "the host"
            then = ("the web server takes over within seconds" if not self.fleet_store
                    else f"node {one_line(self.engine.node)} has no host until one starts there")
            self.notify(f"The host ({gone}) is gone; this session waits for the next host ({then}).",
                        severity="warning", timeout=10, markup=False)
            self._wait_for_host()
        elif not alive and self.mode == ConsoleMode.CLIENT and self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
            gone = f"pid {lease.pid} on {lease.hostname}" if lease else "the host"
            self.notify(f"The host ({gone}) is gone; this console takes over as the host.",
                        severity="warning", timeout=10, markup=False)
            self.mode, self.host_detail = ConsoleMode.STARTING, ""
            self._starter = self._start_engine()
            return
        events = self.engine.journal(limit=1000, after_id=self._last_event_id)
        if events:
            self.post_message(EngineEvents(events))
        self.engine.activity.reload()
        self.refresh_all()

    def _on_engine_change(self, ref: ComponentRef) -> None:
        self._dirty.add(ref)
        if not self._flush_pending:
            self._flush_pending = True
            self.set_timer(CHANGE_BATCH_S, self._flush_changes)

    def _flush_changes(self) -> None:
        self._flush_pending = False
        refs, self._dirty = self._dirty, set()
        if refs:
            self.post_message(ComponentsChanged(refs))

    @on(ComponentsChanged)
    def _components_changed(self, message: ComponentsChanged) -> None:
        if not self._stopped:
            self.refresh_refs(message.refs)

    @on(EngineEvents)
    def _engine_events(self, message: EngineEvents) -> None:
        if self._stopped:
            return  # the engine is closed: nothing more to read from it
        events = message.events
        for event in events:
            if event.id and event.id > self._last_event_id:
                self._last_event_id = event.id
        main = self.main
        self._notice(events)
        if self.is_screen_installed("journal"):
            self.get_screen("journal").add(events)  # type: ignore[attr-defined]
        events = self._own(events)  # the panes are this node's; another node's events are its own
        if not events:
            return
        with self.batch_update():
            main.query_one(SwapLog).add(events)
            kinds = {e.kind for e in events}
            if kinds & UPKEEP_KINDS:
                self.refresh_upkeep()
            if kinds & RESHAPING_KINDS:
                self.refresh_all()  # every pane, approvals and remote included
                return
            touched = {ComponentRef(e.domain, e.key) for e in events
                       if e.domain and e.key and e.kind in KEY_STATE_KINDS}
            if touched:
                self.refresh_refs(touched)
            if kinds & PROPOSAL_KINDS or (self.mode != ConsoleMode.STARTING
                                          and any(k.startswith("swap-") for k in kinds)):
                self.refresh_approvals()
            if kinds & REMOTE_KINDS:
                self.refresh_remote()
            if kinds & TELEMETRY_KINDS:
                self.update_status_bar()

    @on(EngineReady)
    def _engine_ready(self, message: EngineReady) -> None:
        if self._stopped:
            return
        if message.mode == ConsoleMode.FAILED:
            self.notify(message.detail, severity="error", timeout=15, markup=False)
        elif message.mode == ConsoleMode.CLIENT and self.may_host:
            self.notify(f"Another process hosts this state directory: {message.detail}. Showing its state; "
                        "your actions are sent to it as commands.", severity="warning", timeout=10, markup=False)
        self.main.refresh_bindings()
        self.refresh_all()
        # Everything built so far (settings, registry, providers, widgets) lives as long as the
        # console does. Freezing it keeps the collector from walking it all again in every
        # full collection: those walks were 50-110 ms pauses, long enough to delay key presses.
        # Full collections are also made rarer (every 100 middle ones, not 10): what a busy
        # console allocates is freed by reference counting; cycles just wait a little longer.
        gc.freeze()
        _rarer_full_collections()

    def refusal(self, what: str, doing: str | None = None, key: str | None = None) -> str:
        """Why the key for `what` ("pause", "swap") does nothing here, in one sentence;
        read-only says what the key would have done (`doing`: "pause adapter/cache")."""
        if self.engine.read_only:
            would = f"{key} would {doing or what}" if key else f"would {doing or what}"
            return f"read-only: {would}" + (f" ({self.read_only_reason})." if self.read_only_reason else ".")
        if self.mode == ConsoleMode.WAITING:
            return f"No host runs for this state directory: {what} is refused until one does."
        if self.mode == ConsoleMode.ATTACHING:
            return f"{what.capitalize()} is refused until this console has attached to the host."
        return f"{what.capitalize()} is refused: {self.host_detail or 'the engine is not running'}."

    def why_not(self) -> str:
        """Why no change can be made from this console now, in a few words (the help shows it
        beside each key this disables)."""
        if self.engine.read_only:
            return "read-only" + (f" ({self.read_only_reason})" if self.read_only_reason else "")
        if self.mode == ConsoleMode.WAITING:
            return "no host runs for this state directory yet"
        if self.mode == ConsoleMode.ATTACHING:
            return "not attached to the host yet"
        return self.host_detail or "the engine is not running"

    # -- rendering ---------------------------------------------------------------------------
    def refresh_all(self) -> None:
        """Re-read every component (and approvals, remote, the status bar). As a host with
        more than REFRESH_CHUNK keys, after the first time, the components are read and drawn
        a slice at a time over several turns of the loop: with 12,500 keys one pass took
        ~300 ms, a stall for every key press and health gate waiting behind it."""
        if self._stopped:
            return
        main = self.main
        refs = self.engine.resolver.refs()
        if self.is_host and self.statuses and len(refs) > REFRESH_CHUNK:
            self._refresh_in_slices(refs)
        else:
            statuses = self.engine.components(refs)
            self.statuses = {s.ref: s for s in statuses}
            with self.batch_update():
                tree = main.query_one(ComponentTree)
                tree.populate(statuses)
                if main.current is None and statuses:
                    # open on the first component, not on nothing (after layout, when lines exist)
                    tree.call_after_refresh(tree.select_start)
                main.query_one(HealthTable).sync(statuses, self.engine.health_track)
        with self.batch_update():
            self.refresh_approvals()
            self.refresh_remote()
            main.show_detail()
            self.update_status_bar()

    # A description given: Textual's default is the repr of the arguments, 12,500 refs (~40 ms).
    @work(group="refresh", exclusive=True, exit_on_error=False, description="refresh every component")
    async def _refresh_in_slices(self, refs: list[ComponentRef]) -> None:
        """refresh_all's components, REFRESH_CHUNK keys per turn of the loop; a newer
        refresh cancels this one (it reads everything again). Keys gone go at the end."""
        for start in range(0, len(refs), REFRESH_CHUNK):
            if self._stopped:
                return
            self._apply(self.engine.components(refs[start:start + REFRESH_CHUNK]))
            await asyncio.sleep(0)
        if self._stopped:
            return
        present = set(refs)
        for ref in [r for r in self.statuses if r not in present]:
            del self.statuses[ref]
        main = self.main
        main.query_one(ComponentTree).retain(present)
        main.query_one(HealthTable).retain(present)
        main.show_detail()

    def refresh_refs(self, refs: set[ComponentRef]) -> None:
        if self._stopped:
            return
        if not refs:
            return
        self._apply(self.engine.components(sorted(refs, key=str)), refs)

    def _apply(self, fresh: list[ComponentStatus], refs: set[ComponentRef] | None = None) -> None:
        """Show these keys' new status in the tree and the health table: the cost of these keys."""
        for status in fresh:
            self.statuses[status.ref] = status
        main = self.main
        with self.batch_update():
            main.query_one(ComponentTree).update_keys(fresh, lambda: list(self.statuses.values()))
            main.query_one(HealthTable).sync(fresh, self.engine.health_track, complete=False)
            if refs is not None and main.current in refs:
                main.show_detail()

    def refresh_remote(self) -> None:
        if self._stopped:
            return
        try:
            statuses = self.engine.remote.statuses()
        except OneiricError:
            return
        self.main.query_one(RemoteTable).sync(statuses)

    def refresh_approvals(self) -> None:
        if self._stopped:
            return
        fleet = not self.engine.store.backend.holds_one_node
        try:
            pending = self.engine.fleet_pending_proposals() if fleet else self.engine.pending_proposals()
        except OneiricError:
            pending = []
        self.main.query_one(ApprovalsTable).sync(pending, nodes=fleet)
        self._pending = len(pending)
        self.update_status_bar()

    def update_status_bar(self) -> None:
        """The header, fitted to the width (header.py): the mode and the pending count always
        stay; the operator, the pid and the approvals policy give way first at 80 columns."""
        engine = self.engine
        head = Text(" Oneiric ", style="bold reverse")
        mode = {ConsoleMode.STARTING: "HOST starting...", ConsoleMode.HOST: "HOST",
                ConsoleMode.ATTACHING: "CLIENT attaching..."}.get(self.mode, "CLIENT")
        parts = [Part("mode", (mode,), "bold", sep=" ")]
        if self.fleet_store:  # which node the panes show and the keys act on: never left out
            parts.append(Part("node", (f"node {one_line(engine.node)}", one_line(engine.node)), "bold cyan", sep=" "))
        if self.host_detail:
            parts.append(Part("detail", (one_line(self.host_detail), ""), sep=" "))
        if not self.can_change:
            parts.append(Part("read-only", ("READ-ONLY",), "bold yellow", sep=" "))
        parts.append(Part("operator", (f"operator {one_line(engine.actor)}", "")))
        policy = engine.approvals.mode + (" two-person" if engine.approvals.two_person else "")
        parts.append(Part("approvals", (f"approvals {policy}", policy, "")))
        parts.append(Part("pending", (f"{self._pending} pending",)))
        upkeep = self.upkeep
        if upkeep is not None and upkeep.late:
            late = len(upkeep.late)
            over = f" ({upkeep.overdue} overdue)" if upkeep.overdue else ""
            parts.append(Part("maintenance", (f"maintenance {late} due{over} (m)", f"maint {late} due",
                                              f"{late} due"), "bold yellow" if upkeep.overdue else ""))
        if upkeep is not None and upkeep.not_read:
            # upstream Oneiric files or variables in sight, which nothing here reads (m says which)
            parts.append(Part("upstream", ("upstream Oneiric settings NOT READ (m)", "upstream NOT READ",
                                           "NOT READ"), "bold yellow"))
        if self.mode in (ConsoleMode.HOST, ConsoleMode.CLIENT) and engine.watcher_status().state == "down":
            # alive is the normal case; down must not go unnoticed (edits would be ignored)
            parts.append(Part("watcher", ("settings watcher DOWN", "watcher DOWN"), "bold red"))
        if self.mode in (ConsoleMode.HOST, ConsoleMode.CLIENT) and (marker := engine.telemetry_status().marker):
            parts.append(Part("telemetry", (marker,), "bold red"))  # a configured exporter missing or failing
        self.main.update_status_bar(fit(head, parts, self.size.width - 2))

    def on_resize(self, event: events.Resize) -> None:
        if self.screen_stack:
            self.call_after_refresh(self.update_status_bar)

    # -- upkeep: the maintenance calendar and settings not read (upkeep.py, screens/upkeep.py) --
    def refresh_upkeep(self) -> None:
        if not self._stopped:
            self._read_upkeep()

    @work(thread=True, group="upkeep", exclusive=True, exit_on_error=False)
    def _read_upkeep(self) -> None:
        upkeep = read_upkeep(self.engine)
        if not self._stopped:
            self.call_from_thread(self._upkeep_read, upkeep)

    def _upkeep_read(self, upkeep: Upkeep) -> None:
        if self._stopped:
            return
        first = self.upkeep is None
        self.upkeep = upkeep
        if first and upkeep.not_read:
            count = len(upkeep.not_read)
            self.notify(f"{count} upstream Oneiric setting{'s' if count > 1 else ''} (oneiric.yaml, local.yaml or "
                        "ONEIRIC_CONFIG) in sight, which this engine does not read: their selections do not apply. "
                        "m says which, and how to import them.", title="Settings not read", severity="warning",
                        timeout=10, markup=False)
        self.update_status_bar()
        if self.is_screen_installed("upkeep"):
            self.get_screen("upkeep").show(upkeep)  # type: ignore[attr-defined]

    def action_open_upkeep(self, task_id: str | None = None) -> None:
        """`m`: the upkeep view; with `task_id` (the palette's "Mark done"), its done dialog too."""
        from .screens.upkeep import UpkeepScreen  # on first use: not on the first frame's path

        if not self.is_screen_installed("upkeep"):
            self.install_screen(UpkeepScreen(), "upkeep")
        screen = self.get_screen("upkeep")
        if self.screen is not screen:
            self.push_screen("upkeep")
        if task_id is not None:
            screen.ask_done(task_id)  # type: ignore[attr-defined]

    # -- the command palette -----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterator[SystemCommand]:
        """Textual's commands (screenshot, maximize) but its Quit, which would skip the host's
        question, its Keys panel, which lists widget internals, and its Theme, which the
        console's own replaces; then every `:` command (palette.py builds them from the
        command line's table, and each runs as its line would), and "Mark done" for upkeep."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys", "Theme"):
                yield command
        main = self.main
        if not isinstance(main, MainScreen):
            return
        on_main = isinstance(screen, MainScreen)
        # beyond SMALL_KEYS keys, the per-key entries are KeyCommands' (palette_keys.py)
        keys = None if len(self.statuses) <= SMALL_KEYS else ()
        for entry in palette_entries(main.vocabulary(), anywhere_only=not on_main, refused=main.refused, keys=keys):
            yield SystemCommand(entry.title, entry.help, lambda line=entry.line: main.run_command(line))
        upkeep = self.upkeep
        if upkeep is not None and self.can_change:
            for state in upkeep.late:
                yield SystemCommand(f"Mark done: {one_line(state.task.id)} ({upkeep.status(state)})",
                                    f"{one_line(state.task.title)}; asks for a note, journaled with your name",
                                    lambda t=state.task.id: self.action_open_upkeep(t))


def _rarer_full_collections() -> None:
    """A full collection every FULL_GC_EVERY middle ones (see OneiricApp._engine_ready)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


def run_console(settings_dir: str | Path, *, state_dir: str | Path | None = None, read_only: bool = False,
                node: str | None = None) -> int:
    """Run the console; when the operator moves it to another context (`:ctx NAME`), run it
    again there (that context's settings, state directory, store and node). When the operator
    opens another node of a fleet store (`:fleet`, `:node NAME`), run it again as a client of
    that node; its own node (the one it was started for) it may host again."""
    home: str | None = None
    while True:
        engine = Engine(settings_dir, state_dir=state_dir, read_only=read_only or None, node=node)
        home = home or engine.node
        app = OneiricApp(engine, read_only=read_only, read_only_reason="this console was started with --read-only"
                         if read_only else None, may_host=engine.node == home)
        app.run()
        if app.switch_node is not None:
            node = app.switch_node
            continue
        if app.switch_context is None:
            return app.return_code or 0
        from types import SimpleNamespace

        from oneiric_core import contexts

        found = contexts.load()
        target = SimpleNamespace(settings=settings_dir, state_dir=None, node=None)
        contexts.apply(found.get(app.switch_context), target)
        found.use(app.switch_context)
        settings_dir, state_dir, node = target.settings, target.state_dir, target.node
        home = None  # the new context's node is this console's own


if TYPE_CHECKING:  # the app gives the screens what console_port.ConsoleState promises them
    _conforms: type[ConsoleState] = OneiricApp

__all__ = ["MUTATING", "OneiricApp", "run_console", "theme_refusal"]
