"""The main view: five panes, the operator's actions on the highlighted component.

Everything here renders what the engine reports and calls the engine to act. Long work
(swaps, drains, probes) runs in workers so the panes keep updating, and every change an
operator makes is confirmed in a dialog first (a probe changes nothing: it runs at once).
A key that is disabled here says why when pressed, and the help shows the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from oneiric_core.commands import CommandResult
from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.errors import ExitCode, OneiricError
from oneiric_core.journal_view import clock_time
from oneiric_core.lifecycle import SwapOutcome
from oneiric_core.store import StoreError
from oneiric_core.text import clause, one_line

from .command_line import CommandLine, ConsoleCommand, Vocabulary, parse
from .messages import RefHighlighted, SwapDone
from .mode import ConsoleMode
from .pane_filter import Filterable, PaneFilterBox
from .screens.approval_dialog import ApprovalDialog
from .screens.confirm import ConfirmDialog
from .screens.help import HelpScreen, help_sections
from .screens.swap_picker import PickerOption, SwapChoice, SwapPicker
from .widgets.approvals import ApprovalsTable
from .widgets.component_tree import ComponentTree
from .widgets.detail import DetailPane, render_detail
from .widgets.health_table import HealthTable
from .widgets.key_bar import KeyBar
from .widgets.remote_table import RemoteTable
from .widgets.swap_log import SwapLog

if TYPE_CHECKING:
    from .console_port import ConsoleState

PANES = (("tree", "Components"), ("detail", "Explain"), ("health", "Health"), ("log", "Swap log"),
         ("approvals", "Approvals"), ("remote", "Remote"))
# Actions that change the system: dimmed and inert in read-only mode or as a client.
DETAIL_SETTLE_S = 0.06
MUTATING = {"swap", "edit_selection", "pause", "drain", "resume", "approve_selected", "reject_selected",
            "sync_remote"}


class MainScreen(Screen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    # A zoomed pane (z) keeps its `/` and `:` boxes on screen: typed into, they must be seen.
    ALLOW_IN_MAXIMIZED_VIEW = "Footer, PaneFilterBox, CommandLine"
    BINDINGS = [
        *(Binding(str(i), f"focus_pane('{pane}')", title, show=False, id=f"pane.{pane}")
          for i, (pane, title) in enumerate(PANES, start=1)),
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, priority=True, id="pane.next"),
        Binding("shift+tab", "cycle_pane(-1)", "Previous pane", show=False, priority=True, id="pane.previous"),
        Binding("s", "swap", "Swap", id="component.swap"),
        Binding("e", "edit_selection", "Select", show=False, id="component.edit_selection"),
        Binding("p", "pause", "Pause", id="component.pause"),
        Binding("d", "drain", "Drain", id="component.drain"),
        Binding("r", "resume", "Resume", id="component.resume"),
        Binding("h", "probe", "Probe", id="component.probe"),
        Binding("a", "focus_pane('approvals')", "Approvals", show=False, id="approvals.open"),
        Binding("i", "incident", "Incident", id="incident.open"),
        Binding("7", "incident", "Incident", show=False, id="pane.incident"),
        Binding("m", "app.open_upkeep", "Upkeep", show=False, id="upkeep.open"),
        Binding("I", "app.incidents", "Incidents", show=False, id="incidents.view"),
        Binding("L", "app.journal", "Journal", show=False, id="journal.open"),
        Binding("N", "app.notifications", "Notifications", show=False, id="notices.open"),
        Binding("colon", "command_line", "Command", show=False, id="command.open"),
        Binding("z", "zoom", "Zoom", show=False, id="pane.zoom"),
        Binding("slash", "filter_pane", "Filter", show=False, id="pane.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="pane.clear_filter"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "app.quit_console", "Quit", id="app.quit"),
    ]

    def __init__(self) -> None:
        # Start with the breakpoint class the terminal's width calls for: set later (on the
        # first resize) it would restyle every widget once more before the first frame.
        width = self.app.size.width
        super().__init__(classes=next(c for w, c in reversed(self.HORIZONTAL_BREAKPOINTS) if width >= w))
        self.current: ComponentRef | None = None
        self.current_provider: str | None = None
        self._detail_timer: Timer | None = None
        self._status_text: Text | None = None
        self._runbooks_cache: tuple[object, list[str]] | None = None  # _runbook_ids

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        yield Static(id="tabs")
        # Wide: the tree and Remote on the left; Explain, Health and Approvals on the right;
        # the swap log across the bottom (console.tcss sizes each to what it holds).
        # The tree starts active: its classes given here, not on mount, save a restyle.
        with Container(id="main"):
            with Horizontal(id="upper", classes="-active"):
                with Vertical(id="left", classes="column -active"):
                    yield ComponentTree(self.oneiric.explanation, id="tree", classes="pane -active")
                    yield RemoteTable(id="remote", classes="pane")
                with Vertical(id="right", classes="column"):
                    yield DetailPane(id="detail", classes="pane")
                    yield HealthTable(id="health", classes="pane")
                    yield ApprovalsTable(id="approvals", classes="pane")
            yield SwapLog(id="log", classes="pane")
        yield KeyBar()  # every key still fits at 80 columns

    def on_mount(self) -> None:
        for index, (pane, title) in enumerate(PANES, start=1):
            self.query_one(f"#{pane}").border_title = f"{index} {title}"
        self.action_focus_pane("tree")
        self.oneiric.main_screen_ready()

    # -- panes -----------------------------------------------------------------------------
    def pane(self, name: str) -> Widget:
        return self.query_one(f"#{name}")

    def active_pane(self) -> str:
        focused = self.focused
        while focused is not None and focused is not self:
            if focused.has_class("pane"):
                return focused.id or "tree"
            focused = focused.parent  # type: ignore[assignment]
        return "tree"

    def action_focus_pane(self, name: str) -> None:
        self._mark_active(name)
        self.pane(name).focus()
        self._render_tabs(name)

    def _mark_active(self, name: str) -> None:
        """The active pane and the containers around it carry `-active`: on a narrow
        terminal only they are shown (console.tcss)."""
        around = self.pane(name).ancestors
        for pane, _ in PANES:
            self.pane(pane).set_class(pane == name, "-active")
        for box in self.query("#upper, .column"):
            box.set_class(box in around, "-active")

    def action_zoom(self) -> None:
        """`z` shows the active pane alone, full-screen (Textual's maximize), and back:
        a long log or a 50-row health table read without the other panes' borders."""
        if self.maximized is not None:
            self.minimize()
            return
        self.maximize(self.pane(self.active_pane()), container=False)

    def action_cycle_pane(self, step: int) -> None:
        if isinstance(self.focused, CommandLine):  # tab in the command line completes the word
            self.focused.take_suggestion()
            return
        names = [p for p, _ in PANES]
        current = names.index(self.active_pane())
        self.action_focus_pane(names[(current + step) % len(names)])

    def _render_tabs(self, active: str) -> None:
        text = Text()
        for index, (pane, title) in enumerate(PANES, start=1):
            label = f" {index} {title} "
            text.append(f"[{label.strip()}]" if pane == active else label,
                        style="reverse bold" if pane == active else "dim")
            text.append(" ")
        self.query_one("#tabs", Static).update(text)

    def on_descendant_focus(self) -> None:
        name = self.active_pane()
        self._mark_active(name)
        self._render_tabs(name)

    # -- rendering what the engine says ----------------------------------------------------
    def update_status_bar(self, text: Text) -> None:
        """Redraw the one-line bar only when its words change, and without a layout pass: it
        is asked after every batch of events, and a layout pass redraws every pane."""
        if text != self._status_text:
            self._status_text = text
            self.query_one("#status-bar", Static).update(text, layout=False)

    @on(RefHighlighted)
    def _highlighted(self, message: RefHighlighted) -> None:
        """Remember the selection now; redraw the explain pane once the cursor settles, so
        holding `j` stays fast (the bindings do not depend on the selection: no footer work)."""
        self.current = message.ref
        self.current_provider = message.provider
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_SETTLE_S, self.show_detail)

    def show_detail(self) -> None:
        if self.current is None:
            return
        app = self.oneiric
        status = app.statuses.get(self.current)
        if status is None:
            return
        self.query_one(DetailPane).show(render_detail(
            status, app.explanation(self.current), app.engine.health_track(self.current), self.current_provider,
            app.engine.settings_dir))

    # -- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.disabled_reason(action) is not None:
            return None  # shown dimmed; pressed, it says why (on_key)
        if action in ("approve_selected", "reject_selected") and self.active_pane() != "approvals":
            return False
        return True

    def disabled_reason(self, action: str) -> str | None:
        """Why `action` cannot run from this console now, in a few words (None: it can),
        whichever pane has focus: the help lists it beside the key."""
        app = self.oneiric
        if action in MUTATING and not app.can_change:
            return app.why_not()
        if action == "probe" and not app.mode.may_act:
            return app.why_not()
        if action in ("approve_selected", "reject_selected"):
            tables = self.query(ApprovalsTable)
            table = tables.first() if tables else None
            if table is not None and table.selected_id is None:
                return f"no proposal shown (filter: {table.filter_text})" if table.filter_text else \
                    "no pending proposal"
        return None

    def help_nodes(self) -> list[Widget]:
        """Every pane, focused or not: the help lists each pane's keys (`/` in the log, `S` in
        Remote) with the pane they work in."""
        return [self.pane(name) for name, _ in PANES]

    def _refuse_disabled(self, event: events.Key) -> None:
        """A key whose action is disabled here (read-only, or no host to send it to) says so
        in one line instead of doing nothing: the key bar only dims it, and an operator in a
        browser tab may not know the session was started read-only. Read-only says what the
        key would have done. Runs before the key reaches the bindings, which would skip it."""
        if self.oneiric.can_change and self.active_pane() != "approvals":
            return  # nothing is disabled for a reason (probe needs a host; y/n need a proposal)
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        action = active.binding.action.split("(", 1)[0].rsplit(".", 1)[-1]
        if self.disabled_reason(action) is None:
            return
        event.stop()
        what = (active.binding.description or action.replace("_", " ")).lower()
        if self.oneiric.can_change:  # nothing to act on (no proposal): the reason is the sentence
            self.notify(f"{self.app.get_key_display(active.binding)} would {what}: "
                        f"{self.disabled_reason(action)}.", severity="warning", markup=False)
            return
        self.notify(self.oneiric.refusal(what, self._doing(action), self.app.get_key_display(active.binding)),
                    severity="warning", markup=False)

    def _doing(self, action: str) -> str:
        """What `action` would do now, in words: "pause adapter/cache"."""
        ref = one_line(str(self.current)) if self.current is not None else "the highlighted component"
        if action == "swap":
            return f"open the swap picker for {ref}"
        if action == "edit_selection":
            return f"write a new selection for {ref} into its settings file"
        if action in ("pause", "drain", "resume", "probe"):
            return f"{action} {ref}"
        if action in ("approve_selected", "reject_selected"):
            proposal = self.query_one(ApprovalsTable).selected_id
            return f"{action.split('_')[0]} proposal #{proposal}" if proposal is not None else \
                f"{action.split('_')[0]} the highlighted proposal"
        if action == "sync_remote":
            source = self.query_one(RemoteTable).selected_source
            return f"sync the remote source '{one_line(source)}'" if source else "sync every remote source"
        return action.replace("_", " ")

    def _need_ref(self) -> ComponentRef | None:
        if self.current is None:
            self.notify("Highlight a component in the tree first.", severity="warning")
        return self.current

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_sections(self.app)))

    # -- the `:` command line (command_line.py reads the words; here they run) -------------------
    def action_command_line(self) -> None:
        found = self.query(CommandLine)
        box = found.first() if found else None
        if box is None:  # mounted on first use: most sessions never type a command
            box = CommandLine(lambda: self._vocabulary, id="command-line")
            self.mount(box, before=self.query_one(KeyBar))
        self._pane_before_command = self.active_pane()
        self._vocabulary = self.vocabulary()  # once per line: completion runs on every keystroke
        box.value = ""
        box.display = True
        self.set_focus(box)  # now, not at the next idle: keys typed on after `:` are already queued

    def vocabulary(self) -> Vocabulary:
        app = self.oneiric

        def providers(ref_text: str) -> list[str]:
            ref = next((r for r in app.statuses if str(r) == ref_text), None)
            explanation = app.explanation(ref) if ref is not None else None
            return [r.candidate.provider for r in explanation.ranked] if explanation else []

        try:
            records = [p for p in app.engine.pending_proposals() if p.id is not None]
        except OneiricError:
            records = []
        notes = {f"proposal:{p.id}": f"{p.domain}/{p.key} {p.from_provider or 'nothing'} -> {p.to_provider} "
                                     f"(asked by {p.requested_by})" for p in records}
        incidents = self._incident_notes()
        notes.update({f"incident:{i}": title for i, title in incidents})
        upkeep = app.upkeep
        nodes: list[str] = []
        if app.fleet_store:
            try:
                nodes = [lease.node for lease in app.engine.store.nodes()]
            except StoreError:
                pass  # no completion of node names this time; :node still says what is wrong
        return Vocabulary(keys=sorted(str(r) for r in app.statuses), providers=providers, nodes=nodes,
                          proposals=[p.id for p in records if p.id is not None],
                          incidents=[i for i, _ in incidents], runbooks=self._runbook_ids(),
                          themes=sorted(self.app.available_themes), notes=notes,
                          counts={"notices": str(len(app.notices)),
                                  "due": f"{len(upkeep.late)} due" if upkeep is not None else "what is due"})

    def refused(self, name: str) -> bool:
        """Whether command `name` would be refused here now (the palette leaves it out)."""
        if name in ("approve", "reject"):
            return not self.oneiric.can_change
        return self.disabled_reason(name) is not None

    def _incident_notes(self) -> list[tuple[int, str]]:
        from oneiric_core.runbooks.incidents import Incidents

        try:
            return [(i.id, i.title) for i in Incidents(self.oneiric.engine).list(status="open")]
        except (OneiricError, AttributeError):
            return []

    def _open_incident_ids(self) -> list[int]:
        return [i for i, _ in self._incident_notes()]

    def _runbook_ids(self) -> list[str]:
        """The runbook ids, parsed again only when a tree file or the roles change (the
        palette asks on every keystroke: loader.catalog_signature)."""
        from oneiric_core.runbooks.loader import catalog_signature, load_catalog

        engine = self.oneiric.engine
        try:
            roles = list(engine.settings.app.escalation.roles)
            signature = (str(engine.settings_dir), tuple(roles), catalog_signature(engine.settings_dir))
            cached = self._runbooks_cache
            if cached is not None and cached[0] == signature:
                return list(cached[1])
            ids = sorted(load_catalog(engine.settings_dir, roles=roles).trees)
        except (OneiricError, OSError):
            return []
        self._runbooks_cache = (signature, ids)
        return list(ids)

    def _close_command_line(self) -> None:
        for box in self.query(CommandLine):
            box.display = False
        self.action_focus_pane(getattr(self, "_pane_before_command", "tree"))

    @on(CommandLine.Submitted, "#command-line")
    def _command_submitted(self, event: CommandLine.Submitted) -> None:
        event.stop()
        self._close_command_line()
        self.run_command(event.value)

    # -- `/` in a list pane (the log has its own, with kind: and sev:) -------------------------
    def action_filter_pane(self) -> None:
        name = self.active_pane()
        pane = self.pane(name)
        title = dict(PANES).get(name, name)
        if not isinstance(pane, Filterable):
            self.notify(f"{title} has no rows to filter: / filters Components, Health, Swap log, Approvals "
                        "and Remote.", markup=False)
            return
        for old in self.query(PaneFilterBox):
            old.remove()
        box = PaneFilterBox(name, title, pane.filter_text, id="pane-filter")
        self.mount(box, before=self.query_one(KeyBar))
        box.focus()

    def action_clear_filter(self) -> None:
        """`esc` in a filtered pane shows every row again (the log has its own `esc`)."""
        pane = self.pane(self.active_pane())
        if isinstance(pane, Filterable) and pane.filter_text:
            pane.apply_filter("")

    def _close_filter(self, box: PaneFilterBox, text: str) -> None:
        """Apply `text` to the box's pane ("" clears) and give the pane the focus back."""
        pane = self.pane(box.target)
        if isinstance(pane, Filterable):
            pane.apply_filter(text)
        box.remove()
        self.action_focus_pane(box.target)

    @on(PaneFilterBox.Submitted, "#pane-filter")
    def _filter_submitted(self, event: PaneFilterBox.Submitted) -> None:
        event.stop()
        if isinstance(event.input, PaneFilterBox):
            self._close_filter(event.input, event.value)

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and isinstance(self.focused, CommandLine):
            event.stop()
            self._close_command_line()
            return
        if event.key == "escape" and isinstance(self.focused, PaneFilterBox):
            event.stop()
            self._close_filter(self.focused, "")
            return
        self._refuse_disabled(event)

    def run_command(self, line: str) -> None:
        """Run one command line: the same path as its key or palette entry (dialogs included);
        a line that says nothing runnable gets one sentence and changes nothing."""
        command = parse(line.strip().lstrip(":"))
        if isinstance(command, str):
            self.notify(command, severity="warning", markup=False)
            return
        try:
            self._run(command)
        except ValueError as exc:  # a word that names nothing (Vocabulary.resolve_key)
            self.notify(str(exc), severity="warning", markup=False)

    def _run(self, command: ConsoleCommand) -> None:
        name, app = command.name, self.oneiric
        if name in ("pause", "drain", "resume", "probe") and ":" in (command.word(0) or ""):
            self._on_node(name, command.words[0])
        elif name in ("swap", "pause", "drain", "resume", "probe", "explain"):
            ref = self._select(self.vocabulary().resolve_key(command.words[0]))
            if name == "explain":
                self.action_focus_pane("detail")
            elif self.disabled_reason(name) is not None:
                self.notify(app.refusal(name, self._doing(name), f":{name}"), severity="warning", markup=False)
            elif name == "swap" and command.word(1) is not None:
                self._swap_to(ref, command.words[1])
            else:
                getattr(self, f"action_{name}")()
        elif name in ("approve", "reject"):
            if not app.can_change:
                self.notify(app.refusal(name, f"{name} proposal #{command.words[0]}", f":{name}"),
                            severity="warning", markup=False)
            elif int(command.words[0]) not in self.vocabulary().proposals:
                self.notify(f"No pending proposal #{command.words[0]} (the Approvals pane lists them).",
                            severity="warning", markup=False)
            else:
                (self.approve_proposal if name == "approve" else self.reject_proposal)(int(command.words[0]))
        elif name == "history":
            self.action_history(self._select(self.vocabulary().resolve_key(command.words[0])))
        elif name in ("incidents", "incident", "runbook"):
            self._open_incidents(command)
        elif name == "log" and command.word(0) == "at":
            app.action_journal(at=clock_time(command.words[1], app.clock()))
        elif name == "log":
            self.action_focus_pane("log")
            self.query_one(SwapLog).apply_filter(command.word(0) or "")
        elif name == "upkeep":
            app.action_open_upkeep()
        elif name == "journal":
            app.action_journal()
        elif name == "notifications":
            app.action_notifications()
        elif name == "fleet":
            from .screens.fleet import FleetScreen

            self.app.push_screen(FleetScreen(self.oneiric.engine))
        elif name == "rollout":
            self._rollout(command)
        elif name == "node":
            self._open_node(command.word(0))
        elif name == "ctx":
            self._switch_context(command.word(0))
        elif name == "theme":
            self._theme(command.word(0))
        elif name == "help":
            self.action_help()
        elif name == "quit":
            self.app.call_later(app.action_quit_console)

    def _open_node(self, name: str | None) -> None:
        """`:node NAME`: that node's panes (OneiricApp.open_node), once the store says it has
        such a node; `:node` alone: the fleet view, to pick one."""
        app = self.oneiric
        if not app.fleet_store:
            self.notify("This store holds one node (a SQLite file): :node needs a fleet store (store.url, "
                        "docs/fleet.md).", severity="warning", markup=False)
            return
        if name is None:
            from .screens.fleet import FleetScreen

            self.app.push_screen(FleetScreen(self.oneiric.engine))
            return
        try:
            nodes = [lease.node for lease in app.engine.store.nodes()]
        except StoreError as exc:
            self.notify(f"cannot read the nodes: {exc}", severity="error", markup=False)
            return
        if name not in nodes:
            self.notify(f"No node '{one_line(name)}' on this store; the nodes are "
                        f"{', '.join(one_line(n) for n in nodes) or 'none yet'} (:fleet shows them).",
                        severity="warning", markup=False)
            return
        app.open_node(name)

    def _switch_context(self, name: str | None) -> None:
        """`:ctx` lists the contexts (oneiric_core.contexts); `:ctx NAME` moves this console to
        one: it leaves (as the host, after asking what stops) and `oneiric console` starts
        again on that context's settings, state, store and node."""
        from oneiric_core import contexts

        try:
            found = contexts.load()
            if name is None:
                lines = [("* " if c.name == found.current else "  ") + c.describe() for c in found.by_name.values()]
                self.notify("\n".join(lines) if lines else f"No contexts yet: write them in {found.path}.",
                            title="Contexts (:ctx NAME switches)", timeout=15, markup=False)
                return
            context = found.get(name)
        except OneiricError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        app = self.oneiric
        body = context.describe() + "."
        if app.is_host:
            body += f" This console hosts here: {app.engine.running_providers()} provider(s) stop."

        def switch(yes: bool | None) -> None:
            if yes:
                self.app.switch_context = context.name  # type: ignore[attr-defined]
                self.app.call_later(self.app._shutdown)

        self.app.push_screen(ConfirmDialog(f"Switch to context {context.name}?", body, confirm_label="Switch"), switch)

    def _rollout(self, command: ConsoleCommand) -> None:
        """`:rollout` shows the fleet's rollouts; `:rollout KEY PROVIDER` starts one over every
        live node (oneiric_core.rollout.start_rollout), after asking."""
        from oneiric_core.rollout import RolloutOptions, start_rollout

        from .screens.rollouts import RolloutsScreen

        if not command.words:
            self.app.push_screen(RolloutsScreen())
            return
        if len(command.words) < 2:
            self.notify(":rollout KEY PROVIDER: name the provider every node swaps to.", severity="warning",
                        markup=False)
            return
        if not self.oneiric.can_change:
            self.notify("read-only: a rollout changes the fleet", severity="warning", markup=False)
            return
        key, provider = self.vocabulary().resolve_key(command.words[0]), command.words[1]
        options = RolloutOptions()

        def start(yes: bool | None) -> None:
            if not yes:
                return
            try:
                rollout = start_rollout(self.oneiric.engine, key, provider, options, reason="from the console")
            except OneiricError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.app.push_screen(RolloutsScreen(focus_id=rollout.id))

        self.app.push_screen(ConfirmDialog(
            f"Roll {one_line(key)} out to {one_line(provider)} over the fleet?",
            f"Every live node, canary first ({options.canary}), then batches of {options.batch}, each soaked "
            f"{options.soak_s:g}s; halted and swapped back at the first failure. It then waits for its one "
            "approval (a, in the rollouts view).", confirm_label="Start"), start)

    def _select(self, ref_text: str) -> ComponentRef:
        ref = next(r for r in self.oneiric.statuses if str(r) == ref_text)
        self.current, self.current_provider = ref, None
        self.query_one(ComponentTree).select_ref(ref)
        return ref

    def _swap_to(self, ref: ComponentRef, provider: str) -> None:
        """`:swap KEY PROVIDER`: the picker's choice made by the words; the approval dialog next."""
        options = self._picker_options(ref) or []
        option = next((o for o in options if o.provider == provider), None)
        if option is None:
            names = ", ".join(o.provider for o in options) or "none"
            self.notify(f"{one_line(ref)} has no candidate '{one_line(provider)}'; its candidates: {names}.",
                        severity="warning", markup=False)
            return
        self._picked(ref, SwapChoice(option.provider, option.source, force=False))

    def _open_incidents(self, command: ConsoleCommand) -> None:
        if command.name == "incidents":  # the incidents view (I), not the panel of one
            self.oneiric.action_incidents()
            return
        self.action_incident()
        screen = self.app.get_screen("incident")
        word = command.word(0)
        if command.name == "runbook" and word is not None:
            if word not in self._runbook_ids():
                self.notify(f"No runbook '{one_line(word)}' (`oneiric runbook list` lists them).",
                            severity="warning", markup=False)
                return
            screen.call_later(screen.start_runbook, word)  # type: ignore[attr-defined]
        elif command.name == "incident" and word is not None:
            if int(word) not in self._open_incident_ids():
                self.notify(f"No open incident #{word} (I lists them).", severity="warning", markup=False)
                return
            screen.call_later(screen.resume_incident, int(word))  # type: ignore[attr-defined]

    def _theme(self, name: str | None) -> None:
        from .themes import theme_refusal

        if name is None:
            self.app.action_change_theme()
            return
        refused = theme_refusal(name)
        if refused is not None and name not in self.app.available_themes:
            self.notify(refused, severity="warning", markup=False)
            return
        self.app.theme = name

    def action_incident(self) -> None:
        """`i` / `7`: the incident panel (pane 7), full screen; the highlighted component
        becomes the next walk's domain/key. A walk already running is shown as it stands."""
        from .screens.incident import IncidentScreen

        if not self.app.is_screen_installed("incident"):
            self.app.install_screen(IncidentScreen(), "incident")
        screen = self.app.get_screen("incident")
        screen.use_ref(self.current)  # type: ignore[attr-defined]
        self.app.push_screen("incident")

    def action_history(self, ref: ComponentRef | None = None) -> None:
        """The highlighted key's history, full screen (`enter` in Health, `:history KEY`)."""
        from .screens.history import HistoryScreen  # on first use: plotext is no start-up cost

        ref = ref or self._need_ref()
        if ref is not None:
            self.app.push_screen(HistoryScreen(ref))

    @on(HealthTable.HistoryRequested)
    def _history_requested(self, event: HealthTable.HistoryRequested) -> None:
        event.stop()
        self.action_history(event.ref)

    def action_swap(self) -> None:
        ref = self._need_ref()
        if ref is None:
            return
        options = self._picker_options(ref)
        if options is not None:
            self.app.push_screen(SwapPicker(str(ref), options), lambda choice: self._picked(ref, choice))

    def _picker_options(self, ref: ComponentRef) -> list[PickerOption] | None:
        """The key's candidates in rank order, each with explain's reason and its last health."""
        app = self.oneiric
        explanation = app.explanation(ref)
        status = app.statuses.get(ref)
        if explanation is None or status is None:
            return None
        options = []
        records = app.candidate_records(ref)
        for r in explanation.ranked:
            c = r.candidate
            serving = status.serving == c.provider and status.serving_source == c.source
            health, message = app.candidate_health(ref, c.provider)
            record = records.get(c.provider)
            options.append(PickerOption(c.provider, c.source, r.rank, r.reason, serving, health, message,
                                        record.sentence() if record else ""))
        return options

    def action_edit_selection(self) -> None:
        """`e`: change the key's selection in its settings file (the permanent change); the
        host's settings watcher makes it a proposal like any other swap."""
        ref = self._need_ref()
        if ref is None:
            return
        options = self._picker_options(ref)
        if options is None:
            return
        explanation = self.oneiric.explanation(ref)
        where = explanation.selection_file if explanation else "its settings file"
        self.app.push_screen(
            SwapPicker(str(ref), options, title=f"Select for {ref} in {where} (permanent)...", allow_force=False,
                       allow_keep=False),
            lambda choice: self._edit_picked(ref, choice, where))

    def _edit_picked(self, ref: ComponentRef, choice: SwapChoice | None, where: str) -> None:
        if choice is None:
            return
        mode = self.oneiric.engine.approvals.mode
        then = ("the running host's settings watcher applies it at once (approvals: auto)" if mode == "auto" else
                "the running host's settings watcher turns it into a proposal waiting for approval")
        self._confirm_then(f"Select {choice.provider} for {ref}?",
                           f"Writes 'selection {ref.key}: {choice.provider}' into {where} (comments kept); {then}.",
                           "Write", lambda: self._write_selection(ref, choice.provider))

    @work(thread=True, group="settings")
    def _write_selection(self, ref: ComponentRef, provider: str) -> None:
        try:
            path = self.oneiric.engine.edit_selection(ref.domain, ref.key, provider)
        except OneiricError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False, timeout=10)
            return
        self.app.call_from_thread(self.notify, f"Wrote the selection {ref.key}: {provider} to {path.name}.",
                                  markup=False)

    def _picked(self, ref: ComponentRef, choice: SwapChoice | None) -> None:
        if choice is None:
            return
        app = self.oneiric
        try:
            plan = app.engine.plan_swap(ref.domain, ref.key, choice.provider, source=choice.source, force=choice.force)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        status = app.statuses.get(ref)  # what serves now, as the tree shows it (this host's, or the host's)
        from_provider = status.serving if status is not None else plan.from_provider
        risks = []
        if choice.force:
            risks.append("force skips the health gate: an unhealthy provider will be bound")
        health, message = app.candidate_health(ref, choice.provider)
        if health == "failed":
            risks.append(f"{choice.provider}'s last health check failed" + (f": {message}" if message else ""))
        record = app.candidate_records(ref).get(choice.provider)
        if record is not None and record.failures:
            risks.append(f"{choice.provider} {record.sentence()}")
        keep_in = None
        if choice.keep:
            explanation = app.explanation(ref)
            keep_in = (explanation.selection_file if explanation else None) or ref.domain.settings_file
        dialog = ApprovalDialog(
            ref_label=str(ref), key=ref.key, from_provider=from_provider, to_provider=plan.to_provider,
            to_source=plan.to_source, reason=plan.reason, blockers=plan.blockers, force=choice.force,
            high_risk=bool(risks), risk_reasons=risks, keep_in=keep_in,
        )
        def decided(ok: bool | None) -> None:
            if ok:
                self._run_swap(ref, choice)

        self.app.push_screen(dialog, decided)

    @work(group="swaps")
    async def _run_swap(self, ref: ComponentRef, choice: SwapChoice) -> None:
        app = self.oneiric
        app.swapping.add(ref)
        self.notify(f"Swapping {ref} to {choice.provider}...", markup=False)
        try:
            result = await app.act("swap", domain=ref.domain.value, key=ref.key, provider=choice.provider,
                                   to_source=choice.source, force=choice.force or None, source="console",
                                   approve=True)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            app.swapping.discard(ref)
        self.post_message(SwapDone(result, keep=choice.keep))

    @on(SwapDone)
    def _swap_done(self, done: SwapDone) -> None:
        """Say what the swap did, from the answer's data: the same in host and client mode."""
        answer = done.result
        swap, proposal = answer.data.get("swap"), answer.data.get("proposal") or {}
        if swap is None:
            if answer.ok and proposal.get("status") == "pending":
                self.notify(f"Proposal #{proposal.get('id')} waits for another operator to approve it.", markup=False)
            else:
                self._notify_result(answer)
            self._after_action(set())
            return
        ref = ComponentRef(Domain.parse(swap["domain"]), swap["key"])
        node = proposal.get("node")
        if self.oneiric.fleet_store and node and node != self.oneiric.engine.node:
            # another node's proposal, decided by that node's host: its keys are not this screen's
            where = f"{ref} on node {one_line(node)}"
            if swap["outcome"] == SwapOutcome.COMPLETE.value:
                self.notify(f"{where} now served by {one_line(swap['to'])}.", title="Swap complete", markup=False)
            else:
                self.notify(f"{where}: {clause(str(swap.get('reason') or swap['outcome']))}.",
                            title=f"Swap {swap['outcome']}", severity="warning", markup=False, timeout=10)
            self._after_action(set())
            return
        if swap["outcome"] == SwapOutcome.COMPLETE.value:
            took = f" ({swap['total_ms']:.0f} ms)" if swap.get("total_ms") is not None else ""
            message = f"{ref} now served by {swap['to']}{took}."
            explanation = self.oneiric.explanation(ref)
            winner = explanation.winner if explanation is not None else None
            against_ranking = winner is not None and winner.provider != swap["to"]
            if done.keep:  # chosen to keep: it becomes the selection in settings (the watcher
                self._write_selection(ref, swap["to"])  # sees it already serves)
            elif against_ranking and winner is not None:
                # Chosen against the ranking: a host started later serves the winner again.
                message += (f" The settings still rank {winner.provider} first: a restart brings it back. "
                            "Press e to write the selection into settings.")
            self.notify(message, title="Swap complete", markup=False,
                        timeout=10 if against_ranking and not done.keep else 5)
        elif swap["outcome"] == SwapOutcome.NOOP.value:
            self.notify(swap["reason"], markup=False)
        elif swap["outcome"] == SwapOutcome.ROLLED_BACK.value:
            self.notify(f"{ref}: {clause(swap['reason'])}; {swap['from']} keeps serving.",
                        title="Swap rolled back", severity="warning", markup=False, timeout=10)
        else:
            self.notify(f"{ref}: {swap['reason']}", title=f"Swap {swap['outcome']}",
                        severity="error", markup=False, timeout=10)
        self._after_action({ref})

    def _after_action(self, refs: set[ComponentRef]) -> None:
        """Show what an action changed now rather than at the next poll (in client mode the
        host's journal and snapshots say it)."""
        app = self.oneiric
        if app.mode == ConsoleMode.CLIENT:
            app.follow_store()
        elif refs:
            app.refresh_refs(refs)

    def action_approve_selected(self) -> None:
        proposal_id = self.query_one(ApprovalsTable).selected_id
        if proposal_id is not None:
            self.approve_proposal(proposal_id)

    def approve_proposal(self, proposal_id: int) -> None:
        """Ask, then approve proposal #`proposal_id` (`y` in Approvals, "Approve #N" in the palette)."""
        record = self.oneiric.engine.approvals.get(proposal_id)
        self._confirm_then(
            f"Approve proposal #{proposal_id}?",
            f"{record.domain}/{record.key}: {record.from_provider or 'nothing'} -> {record.to_provider}, "
            f"asked by {record.requested_by}. The swap runs at once.", "Approve",
            lambda: self._approve(proposal_id))

    @work(group="swaps")
    async def _approve(self, proposal_id: int) -> None:
        try:
            result = await self.oneiric.act("approve", id=proposal_id)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self.post_message(SwapDone(result))

    def action_reject_selected(self) -> None:
        proposal_id = self.query_one(ApprovalsTable).selected_id
        if proposal_id is not None:
            self.reject_proposal(proposal_id)

    def reject_proposal(self, proposal_id: int) -> None:
        self._confirm_then(f"Reject proposal #{proposal_id}?", "It will never be applied.", "Reject",
                           lambda: self._act("reject", id=proposal_id))

    def _confirm_then(self, title: str, body: str, label: str, then) -> None:
        self.app.push_screen(ConfirmDialog(title, body, label), lambda ok: then() if ok else None)

    def action_pause(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Pause {ref}?", "New work on it fails with 'paused' until it is resumed; "
                               "work in flight finishes. Swaps are refused unless forced.", "Pause",
                               lambda: self._act("pause", **_ref_args(ref)))

    def action_resume(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Resume {ref}?", "It accepts new work again.", "Resume",
                               lambda: self._act("resume", **_ref_args(ref)))

    def action_drain(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Drain {ref}?", "New work is refused; the console waits for work in flight "
                               "to finish and then marks it drained.", "Drain", lambda: self._drain(ref))

    def action_probe(self) -> None:
        """`h`: run the health check once, now (journaled). It changes nothing, so no dialog."""
        ref = self._need_ref()
        if ref is not None:
            self._probe(ref)

    def _on_node(self, kind: str, word: str) -> None:
        """`:pause web-2:cache`: act on another node of a fleet store, through the store (its
        host takes the request; oneiric_core.operator_port.OverStore), after asking."""
        from oneiric_core.operator_port import connect
        from oneiric_core.store.scope import node_name

        node, _, key = word.partition(":")
        app = self.oneiric
        try:
            node_name(node)
            operator = connect(app.engine, read_only=not app.can_change, node=node)
        except OneiricError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        if kind != "probe" and not app.can_change:
            self.notify(app.refusal(kind, f"{kind} {word}", f":{kind}"), severity="warning", markup=False)
            return
        domain, _, bare = key.rpartition("/")
        args: dict[str, Any] = {"domain": domain or None, "key": bare}

        async def run() -> None:
            try:
                result = await operator.run(kind, None, **args)
            except OneiricError as exc:
                self.notify(str(exc), severity="error", markup=False, timeout=10)
                return
            self._notify_result(result)

        if kind == "probe":
            self.run_worker(run(), group="actions")
            return
        self._confirm_then(f"{kind.capitalize()} {key} on node {node}?", f"The request goes to node {node}'s "
                           "host through the store; its host runs it and answers here.", kind.capitalize(),
                           lambda: self.run_worker(run(), group="actions"))

    @work(group="actions")
    async def _act(self, kind: str, **args: object) -> None:
        """Any quick action (pause, resume, reject, probe): its answer as a notification."""
        try:
            result = await self.oneiric.act(kind, **args)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self._notify_result(result)
        self._after_action({self.current} if self.current else set())

    def _notify_result(self, result: CommandResult) -> None:
        refused = result.exit_code in (ExitCode.UNHEALTHY, ExitCode.SWAP_REFUSED)  # the engine said no, safely
        severity: SeverityLevel = "information" if result.ok else ("warning" if refused else "error")
        self.notify(result.message, severity=severity, markup=False, timeout=5 if result.ok else 10)

    @work(group="drains")
    async def _drain(self, ref: ComponentRef) -> None:
        timer = self.set_interval(0.2, lambda: self._after_action({ref}))
        try:
            result = await self.oneiric.act("drain", **_ref_args(ref))
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        finally:
            timer.stop()
        self._notify_result(result)
        self._after_action({ref})

    def action_sync_remote(self) -> None:
        """`S` in the Remote pane: sync the highlighted source (every source if none) now."""
        source = self.query_one(RemoteTable).selected_source
        what = f"the remote source '{source}'" if source else "every remote source"
        self._confirm_then(f"Sync {what} now?", "Fetches and verifies the manifest and registers its entries "
                           "(an entry that disappears while serving becomes a swap proposal, never a removal).",
                           "Sync", lambda: self._sync_remote(source))

    @work(group="remote")
    async def _sync_remote(self, source: str | None) -> None:
        try:
            result = await self.oneiric.act("sync", source=source)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        results = result.data.get("results") or []
        for outcome in results:
            failed = not outcome.get("ok")
            self.notify(outcome.get("message") or "", severity="error" if failed else "information", markup=False,
                        timeout=10 if failed else 5)
        if not results:
            self._notify_result(result)
        self.oneiric.refresh_remote()

    def _probe(self, ref: ComponentRef) -> None:
        self._act("probe", **_ref_args(ref))


def _ref_args(ref: ComponentRef, **extra: object) -> dict[str, object]:
    return {"domain": ref.domain.value, "key": ref.key, **extra}
