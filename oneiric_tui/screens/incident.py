"""Pane 7, the incident panel: a runbook walk with its incident, full screen.

`i` (from anywhere in the main view) or `7` opens it; the component highlighted there becomes
the walk's `domain`/`key`. With no walk running it lists the runbooks (the symptom chooser
first); once one is picked it shows the current node, the evidence of the check that led
there, the choices, the path so far, and the incident's timeline beside it. `esc` leaves the
view; the walk and its incident stay, and `i`/`7` come back to them.

Walking is a look and records nothing. An incident is opened on purpose: `o`, or before the
walk's first step that changes something (oneiric_core.runbooks.walk_incident), each time
after asking its severity with the walk's own preselected (screens/incident_dialogs.py). A
`close-incident` step and `C` ask for the resolution, root cause and follow-ups; `M` shows the
incident's messages ready to copy; `I` lists every open incident.

Nothing here decides anything: the walker (oneiric_core.runbooks.walker) moves, the
Incidents store records, export.postmortem writes the Markdown. Walker calls that await run
in workers, so the main view's panes stay live underneath.

What it shows is nearly all outside text: runbook titles, texts and choices from the
settings, incident titles, notes, who walks and commands, what a check found. Every such
value goes in through oneiric_core.text (`plain`, `styled`, `one_line`; `_option` for the
choices), never as markup or raw control characters.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from oneiric_core.domains import ComponentRef, Domain
from oneiric_core.errors import OneiricError, UsageError
from oneiric_core.runbooks.escalation import Escalation
from oneiric_core.runbooks.export import handoff, postmortem, save, state_dir_path
from oneiric_core.runbooks.facts import MissingParam
from oneiric_core.runbooks.game_day import GameDay
from oneiric_core.runbooks.incidents import CLAIM_RENEW_S, Incidents
from oneiric_core.runbooks.loader import Catalog, load_catalog
from oneiric_core.runbooks.param_choices import param_choices
from oneiric_core.runbooks.walk_incident import needs_incident, open_for_walk, severity_choices, severity_for
from oneiric_core.runbooks.walker import Walker
from oneiric_core.text import multi_line, one_line, plain, styled

from ..keys import vim_keys
from ..pane_filter import filter_subtitle, normalized, row_matches
from ..widgets.follow_ups import flag, follow_up_flags, follow_up_text
from ..widgets.key_bar import KeyBar
from ._style import dialog_box_css
from .confirm import ConfirmDialog
from .incident_dialogs import CloseIncidentDialog, SeverityDialog
from .param_dialog import ParamDialog

if TYPE_CHECKING:
    from ..console_port import ConsoleState

POLL_S = 0.3  # a waiting proposal is checked this often
DEFAULT_SEVERITY = "P2"
TIMELINE_LINES = 200
TIMELINE_EVERY_S = 3
EVIDENCE_LINES = 3  # evidence lines under each step in the timeline
# Actions here that change the system: dimmed and inert when the console cannot change anything.
MUTATING = {"perform", "open_incident", "close_incident"}
NEEDS_INCIDENT = {"note", "export", "export_handoff", "close_incident", "message"}


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _elapsed(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _bullets(lines: list[str]) -> Table:
    """Evidence lines as `*` bullets whose wrapped lines stay indented under their text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(ratio=1)
    for line in lines:
        grid.add_row("*", plain(line))
    return grid


def _option(prompt: str, id: str, disabled: bool = False) -> Option:
    """A choice: its prompt is plain text (OptionList would read a str as markup)."""
    return Option(plain(prompt), id=id, disabled=disabled)


def _crumb(path: list[str], current_tree: str, keep: int = 10) -> Text:
    """`tree:node` steps as `node > node`, naming a tree where the walk enters it."""
    text = Text()
    if len(path) > keep:
        text.append("... > ", style="dim")
        path = path[-keep:]
    last_tree = None
    for index, item in enumerate(path):
        tree, _, node = item.partition(":")
        if index:
            text.append(" > ")
        if tree != last_tree and (index or tree != current_tree):
            text.append(f"[{one_line(tree)}] ", style="bold")
        last_tree = tree
        text.append(one_line(node), style="bold reverse" if index == len(path) - 1 else "")
    return text



# The walker's status in the header, in an operator's words.
WALK_STATUS = {"at-node": "your move", "waiting": "waiting for the approval", "finished": "walk finished"}

class TextPrompt(ModalScreen[str | None]):
    """One line of text (a note, a missing parameter); `enter` keeps it, `esc` drops it."""

    DEFAULT_CSS = dialog_box_css("TextPrompt") + """
    TextPrompt #prompt-title { text-style: bold; margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, placeholder: str = "") -> None:
        super().__init__()
        self._title = title
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(self._title), id="prompt-title")
            yield Input(placeholder=one_line(self._placeholder), id="prompt-input")
            yield Static("enter keeps it, esc cancels", classes="hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceList(OptionList):
    """The node's choices (or the runbooks to pick from); j/k move, enter picks."""

    BINDINGS = vim_keys("incident", top="first", bottom="last")


class IncidentScreen(Screen):
    """The incident panel (pane 7). One instance lives as long as the console."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    DEFAULT_CSS = """
    IncidentScreen #inc-head { height: auto; padding: 0 1; background: $panel; }
    IncidentScreen #inc-body { height: 1fr; }
    IncidentScreen #inc-walk { width: 3fr; }
    IncidentScreen #inc-timeline-box { width: 2fr; border: round $panel-lighten-2; }
    IncidentScreen #inc-crumb { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    IncidentScreen #inc-node-box { height: 1fr; min-height: 5; border: round $panel-lighten-2; padding: 0 1; }
    IncidentScreen #inc-choices { height: auto; min-height: 3; max-height: 45%; border: round $accent; }
    IncidentScreen #inc-timeline { padding: 0 1; }
    IncidentScreen.-narrow #inc-body { layout: vertical; }
    IncidentScreen.-narrow #inc-walk { width: 1fr; height: 1fr; }
    IncidentScreen.-narrow #inc-timeline-box { width: 1fr; height: 5; }
    IncidentScreen.-narrow #inc-choices { max-height: 6; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="incident.leave"),
        Binding("slash", "filter", "Filter", id="incident.filter"),
        Binding("backspace", "back", "Step back", id="incident.back"),
        Binding("r", "rerun", "Re-run check", id="incident.rerun"),
        Binding("n", "note", "Note", id="incident.note"),
        Binding("x", "export", "Export", id="incident.export"),
        Binding("X", "export_handoff", "Hand-off", show=False, id="incident.handoff"),
        Binding("o", "open_incident", "Open incident", id="incident.open_incident"),
        Binding("C", "close_incident", "Close", id="incident.close"),
        Binding("M", "message", "Message", id="incident.message"),
        Binding("I", "app.incidents", "Incidents", show=False, id="incident.incidents"),
        Binding("pagedown", "scroll_node(1)", "Scroll the node", show=False, id="incident.scroll_down"),
        Binding("pageup", "scroll_node(-1)", "Scroll the node", show=False, id="incident.scroll_up"),
        Binding("question_mark", "help", "Help", show=False, id="incident.help"),
        Binding("q", "app.quit_console", "Quit", show=False, id="incident.quit"),
    ]

    def __init__(self) -> None:
        width = self.app.size.width
        super().__init__(classes=next(c for w, c in reversed(self.HORIZONTAL_BREAKPOINTS) if width >= w))
        self.catalog: Catalog | None = None
        self.walker: Walker | None = None
        self.incidents: Incidents | None = None
        self.incident_id: int | None = None
        self.ref: ComponentRef | None = None
        self.busy = False
        self.asked: list[str] = []  # parameters a step asked for that the walker's view did not list
        self.last_export: Path | None = None
        self._poller: Timer | None = None
        self.timeline_text = ""
        self._save_failed = False  # the timeline as shown, as plain text (one line per part)
        self.follow_ups: dict[str, list[Any]] = {}  # per runbook, open post-mortem follow-ups (the picker's flag)
        # A game day (oneiric_core.runbooks.game_day): the drill's faults around the walk, its score at the end.
        self.game_day: GameDay | None = None
        self.picker_filter = ""  # `/` in the runbook picker: the words its runbooks are narrowed to

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="inc-head")
        yield Static(id="inc-crumb")  # the path so far, over both columns: their boxes line up
        with Horizontal(id="inc-body"):
            with Vertical(id="inc-walk"):
                with VerticalScroll(id="inc-node-box"):
                    yield Static(id="inc-node")
                yield Input(placeholder="filter the runbooks: words (enter keeps them, esc clears)", id="inc-filter")
                yield ChoiceList(id="inc-choices")
            with VerticalScroll(id="inc-timeline-box"):
                yield Static(id="inc-timeline")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#inc-filter", Input).display = False
        self.query_one("#inc-node-box").border_title = "7 Incident"
        self.query_one("#inc-timeline-box").border_title = "Timeline"
        self.query_one("#inc-choices").border_title = "Choices (j/k, enter)"
        self._ticks = 0
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Once a second while shown: the elapsed time; every few seconds the timeline too (the
        journal events of the components involved arrive on their own). Shown or not, the walk
        this console holds keeps its claim renewed, so every other console sees it is walked."""
        self._ticks += 1
        if (self.incidents is not None and self.incident_id is not None and self.walker is not None
                and not self.walker.finished and self._ticks % int(CLAIM_RENEW_S) == 0):
            try:
                self.incidents.renew_walk(self.incident_id)
            except OneiricError:
                pass  # the store says why elsewhere (the header); the claim goes stale, as it should
        if not self.is_current:
            return
        self._render_head()
        if self.incident_id is not None and self._ticks % TIMELINE_EVERY_S == 0:
            self._render_timeline()

    def on_screen_resume(self) -> None:
        self.render_all()
        self.query_one(ChoiceList).focus()

    # -- `/`: narrow the runbook picker (pane_filter.row_matches, the rule of every list pane) ------
    def action_filter(self) -> None:
        if self.walker is not None:
            self.notify("/ narrows the runbook picker; a walk under way has only its own choices.",
                        severity="warning", markup=False)
            return
        box = self.query_one("#inc-filter", Input)
        box.value = self.picker_filter
        box.display = True
        self.set_focus(box)

    @on(Input.Changed, "#inc-filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        self._set_picker_filter(event.value)

    @on(Input.Submitted, "#inc-filter")
    def _filter_kept(self, event: Input.Submitted) -> None:
        self.query_one("#inc-filter", Input).display = False
        self.query_one(ChoiceList).focus()

    def _set_picker_filter(self, text: str) -> None:
        self.picker_filter = normalized(text)
        self.query_one("#inc-choices").border_subtitle = filter_subtitle(self.picker_filter)
        self._render_node()

    def on_key(self, event: Any) -> None:
        """esc clears the picker's filter (in its box, or in the picker) before it leaves."""
        if event.key == "escape" and self.picker_filter and self.walker is None:
            event.stop()
            event.prevent_default()
            box = self.query_one("#inc-filter", Input)
            box.value, box.display = "", False
            self._set_picker_filter("")
            self.query_one(ChoiceList).focus()

    # -- entry point ---------------------------------------------------------------------------
    def use_ref(self, ref: ComponentRef | None) -> None:
        """The main view's highlighted component: the parameters of the next walk."""
        if self.walker is None:
            self.ref = ref

    def _load(self) -> Catalog:
        if self.catalog is None:
            engine = self.oneiric.engine
            self.catalog = load_catalog(engine.settings_dir, roles=list(engine.settings.app.escalation.roles))
            for error in self.catalog.errors:
                self.notify(error, severity="warning", markup=False, timeout=10)
        return self.catalog

    def _trees(self) -> list[Any]:
        catalog = self._load()
        trees = list(catalog.trees.values())
        order = {"quick-reference": 0, "incident-response": 1}
        return sorted(trees, key=lambda t: (order.get(t.id, 2), t.kind == "procedure", t.title))

    # -- rendering -----------------------------------------------------------------------------
    def render_all(self) -> None:
        self._save_walk()
        self._render_head()
        self._render_node()
        self._render_timeline()

    def _save_walk(self) -> None:
        """Keep the walk on its incident after every change, so a restarted console (a
        procedure step may restart this host) can resume it where it was."""
        if self.walker is None or self.incidents is None or self.incident_id is None:
            return
        try:
            self.incidents.save_walk(self.incident_id, self.walker)
        except OneiricError as exc:
            if not self._save_failed:
                self.notify(f"The walk could not be saved on incident #{self.incident_id}: {exc}",
                            severity="warning", markup=False)
            self._save_failed = True
        else:
            self._save_failed = False

    def _render_head(self) -> None:
        text = Text()
        text.append(" Incident ", style="bold reverse")
        walker = self.walker
        if walker is None:
            text.append("  no walk running: pick a runbook below")
            if self.ref is not None:
                text.append(f"  (for {one_line(self.ref)})")
        else:
            text.append(f"  {one_line(walker.tree.title)}", style="bold")
            shown = [f"{walker.params['domain']}/{walker.params['key']}"] \
                if walker.params.get("domain") and walker.params.get("key") else []
            shown += [f"source={walker.params['source']}"] if walker.params.get("source") else []
            params = ", ".join(shown)
            if params:
                text.append(f"  [{one_line(params)}]")
            inc = self._incident()
            if inc is not None:
                esc = self.incidents.escalation if self.incidents else None
                target = esc.response_min(inc.severity) if esc else None
                elapsed = inc.elapsed_s(self.oneiric.clock())
                text.append(f"\n #{inc.id} {one_line(inc.severity)} {inc.status} | elapsed {_elapsed(elapsed)}")
                if target is not None:
                    over = elapsed > target * 60
                    text.append(f" of {_elapsed(target * 60)} to respond", style="bold red" if over else "")
                    if over:
                        text.append(" OVER", style="bold red")
                text.append(f" | cmdr {one_line(inc.commander)}")
            else:
                sev = f"{one_line(walker.severity)} " if walker.severity else ""
                why = "read-only" if not self.oneiric.can_change else "a look: o opens one, a change asks"
                text.append(f"\n no incident ({why}) | {sev}| elapsed "
                            f"{_elapsed(self.oneiric.clock() - walker.started_at)}")
            text.append(f" | {'working...' if self.busy else one_line(WALK_STATUS.get(walker.status, walker.status))}")
            if self.game_day is not None:
                scored = self.game_day.scored
                text.append("\n " + one_line(scored[1] if scored else f"Game day: drill '{self.game_day.drill.id}'; "
                                              "walk it as for real, the exit you reach is scored"),
                            style="bold" if scored else "")
        self.query_one("#inc-head", Static).update(text)

    def _incident(self) -> Any:
        if self.incidents is None or self.incident_id is None:
            return None
        try:
            return self.incidents.get(self.incident_id)
        except OneiricError:
            return None

    def _render_node(self) -> None:
        choices = self.query_one(ChoiceList)
        crumb = self.query_one("#inc-crumb", Static)
        parts: list[Any] = []
        options: list[Option] = []
        walker = self.walker
        if walker is None:
            resumable = self._resumable()
            crumb.update("Resume a walk, or pick a runbook (the symptom chooser triages first)."
                         if resumable else "Pick a runbook (the symptom chooser triages the engine first).")
            for inc, state, owner in resumable:
                busy = f"  (walked now by {owner.describe()})" if owner and owner.busy_elsewhere() else ""
                options.append(_option(f"Resume incident #{inc.id} ({inc.severity}): "
                                      f"{self._tree_title(state['tree'])} at {state['node']}{busy}",
                                      id=f"resume:{inc.id}"))
            highlighted = choices.highlighted
            current = choices.get_option_at_index(highlighted).id \
                if highlighted is not None and highlighted < choices.option_count else None
            self.follow_ups = follow_up_flags(self.oneiric.engine, self._load())  # flagged until reviewed
            parts.append(self._picker_summary(current or (options[0].id if options else None)))
            for tree in self._trees():
                procedure = tree.kind == "procedure" and not tree.title.lower().startswith("procedure")
                label = tree.title + ("  (procedure)" if procedure else "")
                if row_matches(self.picker_filter, [label, tree.id]):
                    options.append(_option(label + flag(self.follow_ups.get(tree.id, [])), id=f"tree:{tree.id}"))
            # the walk's component is the main view's highlighted one, or one named here: a key
            # that does not exist is what "Component not found" is walked for
            options.append(_option(f"Walk for another component than {self.ref} (a key that need not exist)..."
                                   if self.ref is not None else
                                   "Walk for a component (a key that need not exist)...", id="pick-ref"))
        else:
            crumb.update(_crumb(walker.breadcrumb(), walker.tree.id))
            view = walker.view()
            head = Text()
            head.append(f"[{one_line(view['kind'].upper())}] ", style="bold reverse")
            if view["title"]:
                head.append(one_line(view["title"]) + "\n", style="bold")
            head.append(multi_line(view["text"]))
            if view["where"]:
                head.append(f"\nWhere to look: {multi_line(view['where'])}", style="italic")
            parts.append(head)
            if walker.history:
                last = walker.history[-1]
                parts.append(styled("[bold]\nLast step: {node} -> {value}[/]", node=last.node, value=last.value))
            evidence = view["evidence"]
            if evidence:
                label = {"check": "Evidence", "action": "Outcome", "escalate": "Escalated to"}.get(
                    view["evidence_from"] or "", "Evidence")
                parts.append(Text(f"{label}:", style="bold"))
                parts.append(_bullets(evidence))
            action = view.get("action")
            if action:
                if action["name"] == "manual":
                    parts.append(Text("\nA step only you can do (outside the console): do it, then confirm it "
                                      "is done.", style="bold"))
                else:
                    parts.append(styled("[bold]\nAction {name}: {changes}[/]", name=action["name"],
                                        changes=action["changes"]))
                if action["via_proposal"]:
                    parts.append(Text("  A swap proposal: the approvals policy applies (approve it below, or in the "
                                      "Approvals pane)."))
                pending = action.get("pending")
                if pending:
                    parts.append(styled("[bold yellow]  waiting: {message}[/]", message=pending["message"]))
            escalation = view.get("escalation")
            if escalation and not walker.finished:
                c = escalation["contact"]
                reach = ", ".join(f"{k} {c[k]}" for k in ("page", "email", "chat") if c.get(k))
                parts.append(styled("[bold]\nEscalate to {name}: {reach}[/]", name=c.get("name"),
                                    reach=reach or "no contact details"))
                parts.append(plain(f"  {escalation['response']}"))
            if walker.finished:
                parts.append(Text("\nThe walk is finished.", style="bold green"))
                options.append(_option("Start another walk", id="new"))
            elif view["missing"] or [n for n in self.asked if n not in view["params"]]:
                for name in [*view["missing"], *(n for n in self.asked if n not in view["params"])]:
                    options.append(_option(f"Set the parameter '{name}'...", id=f"param:{name}"))
            elif view["kind"] == "question":
                for label in view["choices"]:
                    options.append(_option(label, id=f"answer:{label}"))
            elif view["kind"] == "action":
                action = view["action"]
                what = {"manual": "Done: I did this step",
                        "close-incident": "Close the incident: resolution, root cause, follow-ups"}.get(
                    action["name"], f"Perform: {action['name']}")
                pending_id = walker.pending.proposal_id if walker.pending is not None else None
                if walker.status == "waiting" and pending_id is not None and self.oneiric.can_change:
                    # decided here, through the same approval path as the Approvals pane
                    options.append(_option(f"Approve proposal #{pending_id} here (asks to confirm; the approvals "
                                           "policy applies)", id=f"approve:{pending_id}"))
                    options.append(_option(f"Reject proposal #{pending_id}", id=f"reject:{pending_id}"))
                    options.append(_option("Or wait for another operator's decision (checked every few seconds)",
                                           id="wait", disabled=True))
                elif walker.status == "waiting":
                    options.append(_option("Waiting for the proposal's decision (checked every few seconds)",
                                          id="wait", disabled=True))
                elif self.check_action("perform", ()) is True:
                    asks = "asks for them" if action["name"] == "close-incident" and self.incident_id is not None \
                        else "asks to confirm"
                    options.append(_option(f"{what} ({asks})", id="perform"))
                else:
                    options.append(_option(f"{what} (disabled: read-only)", id="perform", disabled=True))
            elif view["kind"] == "check":
                options.append(_option("Run the check", id="advance"))
            elif view["kind"] == "escalate":
                options.append(_option("Acknowledge and go on", id="ack"))
            elif view["kind"] == "done":
                back = view.get("returns_to")
                options.append(_option(f"Finish this runbook and go back to {back}" if back else "Finish", id="ack"))
        self.query_one("#inc-node", Static).update(Group(*parts))
        old = [(o.id, str(o.prompt), o.disabled) for o in (choices.get_option_at_index(i)
                                                            for i in range(choices.option_count))]
        if old != [(o.id, str(o.prompt), o.disabled) for o in options]:  # same ids can have new labels
            choices.clear_options()
            choices.add_options(options)
            if options:
                choices.highlighted = next((i for i, o in enumerate(options) if not o.disabled), 0)

    def _resumable(self) -> list[tuple[Any, dict[str, Any], Any]]:
        """Walks saved on incidents still open (read-only consoles record nothing: none)."""
        if not self.oneiric.can_change:
            return []
        try:
            return Incidents(self.oneiric.engine).resumable()
        except OneiricError:
            return []

    def _tree_title(self, tree_id: str) -> str:
        tree = self._load().trees.get(tree_id)
        return tree.title if tree is not None else tree_id

    def _picker_summary(self, option_id: str | None) -> Text:
        """With no walk: what the highlighted choice is, a saved walk or a runbook."""
        what, _, arg = (option_id or "").partition(":")
        if what == "resume":
            return self._resume_summary(int(arg))
        return self._tree_summary(arg if what == "tree" else None)

    def _resume_summary(self, incident_id: int) -> Text:
        body = Text()
        try:
            incidents = Incidents(self.oneiric.engine)
            inc, state = incidents.get(incident_id), incidents.saved_walk(incident_id) or {}
        except OneiricError as exc:
            body.append(one_line(exc))
            return body
        body.append(f"Incident #{inc.id}: {one_line(inc.title)}\n", style="bold")
        body.append(one_line(f"{inc.severity}, {inc.status}, commander {inc.commander}, opened "
                             f"{_elapsed(inc.elapsed_s())} ago") + "\n")
        steps = state.get("history") or []
        body.append(f"\nIts walk of {one_line(self._tree_title(state.get('tree', '?')))} stopped at "
                    f"'{one_line(state.get('node', '?'))}' after {len(steps)} step(s)"
                    + (", waiting for the approval of a proposal" if state.get("status") == "waiting" else "")
                    + ".\n")
        for step in steps[-3:]:
            body.append(one_line(f"  {step.get('node')} -> {step.get('value')}") + "\n", style="dim")
        body.append("\nenter resumes it there: the checks run again against the engine as it is now.\n")
        return body

    def _tree_summary(self, tree_id: str | None) -> Text:
        """With no walk: what the highlighted runbook is for."""
        body = Text()
        trees = self._trees()
        if not trees:
            body.append("No runbooks are loaded (settings/runbooks/).")
            return body
        tree = next((t for t in trees if t.id == tree_id), trees[0])
        body.append(f"{one_line(tree.title)}\n", style="bold")
        if tree.summary:
            body.append(f"{multi_line(tree.summary)}\n")
        facts = [f"{'procedure' if tree.kind == 'procedure' else 'troubleshooting tree'}"]
        if tree.severity:
            facts.append(f"default severity {tree.severity}")
        if tree.params:
            facts.append("parameters " + ", ".join(tree.params))
        body.append("\n" + one_line("; ".join(facts)) + "\n", style="dim")
        body.append(follow_up_text(self.follow_ups.get(tree.id, [])))
        if self.ref is not None:
            body.append(f"Walks with domain={self.ref.domain.value}, key={one_line(self.ref.key)} "
                        "(the component highlighted in the main view).\n")
        return body

    @on(OptionList.OptionHighlighted, "#inc-choices")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.walker is None:
            self.query_one("#inc-node", Static).update(self._picker_summary(event.option.id))

    def _render_timeline(self) -> None:
        """One entry per step, answer, approval and note: a heading line (time, kind, who),
        its text indented under it, then what the check found indented further. Wrapped
        lines keep their indent (Padding), so a narrow column still reads as a list."""
        parts: list[Any] = []
        entries: list[tuple[float, str, str | None, str, dict[str, Any]]] = []
        if self.incidents is not None and self.incident_id is not None:
            try:
                entries = [(e.ts, e.kind, e.actor, e.text, e.data) for e in self.incidents.timeline(self.incident_id)]
            except OneiricError as exc:
                parts.append(plain(exc))
        elif self.walker is not None:
            entries = [(s.ts, s.kind, s.actor, f"[{s.tree}] {s.text} -> {s.value}", s.to_dict())
                       for s in self.walker.history]
        if not entries and not parts:
            parts.append(Text("Nothing yet.", style="dim"))
        shown: list[str] = [str(p) for p in parts]
        for ts, kind, actor, line, data in entries[-TIMELINE_LINES:]:
            shown_kind = f"{kind}, before it was opened" if data.get("before_open") else kind
            heading = Text.assemble((f"{_clock(ts)} ", "dim"), (one_line(shown_kind), "bold"),
                                    (f" ({one_line(actor)})" if actor else "", "dim"))
            parts += [heading, Padding(plain(line, multiline=True), (0, 0, 0, 2))]
            shown += [heading.plain, line]
            if kind in ("step", "check", "action"):  # what the check found, what the action did
                for found in (data.get("evidence") or [])[:EVIDENCE_LINES]:
                    parts.append(Padding(plain(found, "dim"), (0, 0, 0, 4)))
                    shown.append(found)
        key = "\n".join(shown)
        if key == self.timeline_text:
            return  # nothing new: leave the view (and where it is scrolled) alone
        self.timeline_text = key
        self.query_one("#inc-timeline", Static).update(Group(*parts))
        self.query_one("#inc-timeline-box", VerticalScroll).scroll_end(animate=False)

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and not self.oneiric.can_change:
            return None
        if action in NEEDS_INCIDENT and self.incident_id is None:
            return None
        if action == "open_incident" and (self.walker is None or self.incident_id is not None):
            return None
        if action in ("back", "rerun") and self.walker is None:
            return None
        return True

    def action_scroll_node(self, direction: int) -> None:
        """pgdn/pgup: scroll the node's text and evidence (the choices keep the focus)."""
        box = self.query_one("#inc-node-box", VerticalScroll)
        box.scroll_to(y=box.scroll_y + direction * max(1, box.size.height - 1), animate=False)

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))

    def action_leave(self) -> None:
        self.app.pop_screen()

    @on(OptionList.OptionSelected, "#inc-choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if self.busy:
            self.notify("Still working on the last step.", severity="warning")
            return
        choice = event.option.id or ""
        what, _, arg = choice.partition(":")
        if what == "tree":
            self._start(arg)
        elif what == "resume":
            self._resume(int(arg))
        elif what == "pick-ref":
            self._pick_ref()
        elif what == "new":
            self._stop_polling()
            self.walker, self.incidents, self.incident_id = None, None, None
            self.refresh_bindings()
            self.render_all()
        elif what == "answer":
            self._call(lambda w: w.answer(arg, actor=self.oneiric.engine.actor))
            self._advance()
        elif what == "param":
            self._ask_param(arg)
        elif what == "advance":
            self._advance()
        elif what == "ack":
            self._call(lambda w: w.acknowledge(actor=self.oneiric.engine.actor))
            self._advance()
        elif what == "perform":
            self._confirm_perform()
        elif what in ("approve", "reject"):
            self._confirm_decision(what, int(arg))

    def _confirm_decision(self, kind: str, proposal_id: int) -> None:
        """Approve or reject the walk's own proposal here: the command the Approvals pane sends,
        so the approvals policy (two people, signatures, rights) decides exactly as there."""
        if kind == "approve":
            title, body = f"Approve proposal #{proposal_id}?", "The swap runs at once if the approvals policy " \
                "lets you approve it (a policy needing two people refuses the one who asked)."
        else:
            title, body = f"Reject proposal #{proposal_id}?", "It will never be applied; the walk goes on from there."
        def decided(ok: bool | None) -> None:
            if ok:
                self._decide(kind, proposal_id)

        self.app.push_screen(ConfirmDialog(title, body, kind.capitalize()), decided)

    @work(group="incident-walk", exit_on_error=False)
    async def _decide(self, kind: str, proposal_id: int) -> None:
        try:
            result = await self.oneiric.act(kind, id=proposal_id)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self.notify(result.message, markup=False, severity="information" if result.ok else "warning",
                    timeout=5 if result.ok else 10)
        self.oneiric.refresh_approvals()
        self._poll()

    def _ask_for(self, exc: MissingParam) -> None:
        if exc.name not in self.asked:
            self.asked.append(exc.name)
        self.notify(f"This step needs '{exc.name}': set it below.", severity="warning", markup=False)

    def _call(self, fn) -> None:
        try:
            fn(self.walker)
        except MissingParam as exc:
            self._ask_for(exc)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
        self.render_all()

    def _ask_param(self, name: str) -> None:
        """The values the engine knows for `name` as a list, and a box to type another."""
        if self.walker is None:
            return
        asked = param_choices(self.oneiric.engine, self.walker.params, name)
        self.app.push_screen(ParamDialog(asked), lambda v: self._set_param(name, v))

    def _pick_ref(self) -> None:
        """The picker's "Walk for another component": its domain, then its key (listed, or typed)."""
        engine = self.oneiric.engine

        def keyed(domain: str, key: str | None) -> None:
            if not key:
                return
            self.ref = ComponentRef(Domain.parse(domain), key)
            self.notify(f"The next walk is for {self.ref}.", markup=False)
            self.render_all()

        def domained(domain: str | None) -> None:
            if domain:
                try:
                    Domain.parse(domain)
                except OneiricError as exc:
                    self.notify(str(exc), severity="error", markup=False)
                    return
                asked = param_choices(engine, {"domain": Domain.parse(domain).value}, "key")
                self.app.push_screen(ParamDialog(asked), lambda key: keyed(domain, key))

        self.app.push_screen(ParamDialog(param_choices(engine, {}, "domain")), domained)

    def _set_param(self, name: str, value: str | None) -> None:
        if self.walker is None:
            return
        if not value:  # cancelled: the walk stays where it is, and says what it waits for
            self.notify(f"Nothing was set: the walk waits at '{self.walker.node_id}' for '{name}'.",
                        severity="warning", markup=False)
            return
        self.walker.set_param(name, value)
        self._advance()

    def start_runbook(self, tree_id: str) -> None:
        """`:runbook ID`: begin that tree's walk, as picking it does. An incident's walk in
        progress is kept (it is saved on the incident); the operator leaves it first."""
        if self.busy:
            self.notify("Still working on the last step.", severity="warning")
            return
        if self.walker is not None and self.incident_id is not None:
            self.notify(f"Incident #{self.incident_id}'s walk is open: finish it or pick 'new walk' first.",
                        severity="warning", markup=False)
            return
        self._stop_polling()
        self._start(tree_id)

    def _start(self, tree_id: str) -> None:
        app = self.oneiric
        catalog = self._load()
        tree = catalog.trees.get(tree_id)
        if tree is None:
            return
        params = {"domain": self.ref.domain.value, "key": self.ref.key} if self.ref is not None else {}
        if self.game_day is not None and tree_id == self.game_day.tree.id:
            params = self.game_day.params  # the drill's component, whatever the main view highlights
        engine = app.engine
        escalation = Escalation.from_engine(engine)
        severity = tree.severity or DEFAULT_SEVERITY  # preselected when an incident is opened
        # A look: nothing is recorded until the operator opens an incident (o) or a step
        # that changes something asks for one.
        self.walker = Walker(catalog, tree_id, engine, params=params, actor=engine.actor,
                             escalation=escalation, severity=severity)
        self.incidents, self.incident_id = None, None
        self.asked = []
        self.refresh_bindings()
        self._advance()

    def resume_incident(self, incident_id: int) -> None:
        """Show incident `incident_id`'s walk (the incidents view's enter): the one shown already
        stays as it is; another one is taken up where its walk was saved. A look walked
        meanwhile (no incident) is dropped."""
        if self.incident_id == incident_id and self.walker is not None:
            self.render_all()
            return
        if self.busy:
            self.notify("Still working on the last step.", severity="warning")
            return
        self._stop_polling()
        self._resume(incident_id)

    def _resume(self, incident_id: int) -> None:
        """Take up the walk saved on an incident (another console's, or this one's before a restart)."""
        engine = self.oneiric.engine
        try:
            incidents = Incidents(engine)
            state = incidents.saved_walk(incident_id)
            if state is None:
                raise UsageError(f"Incident #{incident_id} has no saved walk.")
            owner = incidents.walk_owner(incident_id)
            if owner is not None and owner.busy_elsewhere():
                raise UsageError(f"Incident #{incident_id}'s walk is being walked now by {owner.describe()}; "
                                 "walk on there, or quit that console first.")
            walker = Walker.from_state(self._load(), engine, state, escalation=Escalation.from_engine(engine))
            walker.actor = engine.actor  # whoever walks on from here
            walker.set_param("incident", incident_id)  # what its close step closes
            incidents.claim_walk(incident_id, engine.actor)
            incidents.attach_walk(incident_id, walker, resumed=True)
            incidents.add_entry(incident_id, "step", engine.actor,
                                f"[{walker.tree.id}] walk resumed at {walker.node_id} by {engine.actor}")
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.walker, self.incidents, self.incident_id = walker, incidents, incident_id
        self.asked = []
        self.refresh_bindings()
        if walker.status == "waiting":
            self._poller = self.set_interval(POLL_S, self._poll)
            self.render_all()
        else:
            self._advance()

    @work(group="incident-walk", exit_on_error=False)
    async def _advance(self) -> None:
        await self._run_checks()

    async def _run_checks(self) -> None:
        """Run the checks until the walk needs the operator."""
        walker = self.walker
        if walker is None:
            return
        self.busy = True
        self.render_all()
        try:
            await walker.advance()
            if self.game_day is not None:
                await self._game_day_step(walker)
        except MissingParam as exc:
            self._ask_for(exc)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
        finally:
            self.busy = False
        self.render_all()

    async def _game_day_step(self, walker: Walker) -> None:
        """A game day: the drill's faults for the node the walk stands at; its score at the end."""
        game_day = self.game_day
        if game_day is None or walker is not self.walker or walker.tree.id not in game_day.catalog.trees:
            return
        if walker.finished:
            if game_day.scored is None and (scored := game_day.score(walker)) is not None:
                self.notify(scored[1], title="Game day", severity="information" if scored[0] else "warning",
                            markup=False, timeout=30)
        elif walker.node.kind != "check":
            await game_day.arrive(walker)

    def action_back(self) -> None:
        if self.walker is None or self.busy:
            return
        if self.walker.status == "waiting":
            self._stop_polling()
        if not self.walker.back():
            self.notify("Already at the start of the walk.")
        elif self.incidents is not None and self.incident_id is not None:
            try:  # the timeline is append-only: say that the walk went back, not erase the step
                self.incidents.add_entry(self.incident_id, "step", self.oneiric.engine.actor,
                                         f"[{self.walker.tree.id}] went back to {self.walker.node_id}")
            except OneiricError as exc:
                self.notify(str(exc), severity="error", markup=False)
        self.render_all()

    def action_rerun(self) -> None:
        if self.walker is None or self.busy:
            return
        self._rerun()

    @work(group="incident-walk", exit_on_error=False)
    async def _rerun(self) -> None:
        walker = self.walker
        if walker is None:
            return
        self.busy = True
        try:
            step = await walker.rerun()
            self.notify(f"Re-ran {step.node}: {step.value}", markup=False)
            await walker.advance()
        except (OneiricError, MissingParam) as exc:
            self.notify(str(exc), severity="error", markup=False)
        finally:
            self.busy = False
        self.render_all()

    def _confirm_perform(self) -> None:
        if self.check_action("perform", ()) is not True or self.walker is None:
            self.notify("Read-only: actions are disabled.", severity="warning")
            return
        view = self.walker.view()
        action = view.get("action") or {}
        inc = self._incident()
        if action.get("name") == "close-incident" and inc is not None and inc.status != "closed":
            self.app.push_screen(CloseIncidentDialog(inc.id, inc.title, root_cause=inc.root_cause,
                                                     follow_ups=inc.follow_ups), self._close_step)
            return
        if action.get("name") == "manual":
            title, body, button = "Is this step done?", f"{view['text']}\nThe console cannot do it; confirm that " \
                "you did it. It is recorded on the incident's timeline.", "Done"
        else:
            title, button = f"Perform {action.get('name')}?", "Perform"
            body = f"{view['text']}\nChanges: {action.get('changes', '')}."
            if action.get("via_proposal"):
                body += " It becomes a swap proposal; the approvals policy decides when it applies."
        self.app.push_screen(ConfirmDialog(title, body, button), lambda ok: self._confirmed() if ok else None)

    def _confirmed(self) -> None:
        """The step is confirmed: the first one that changes something opens the incident first."""
        if self.walker is not None and needs_incident(self.walker):
            self._ask_severity("This step changes something, so it is recorded on an incident. Its severity?",
                               then=self._perform, refused="No incident was opened, so the step was not performed.")
        else:
            self._perform()

    def action_open_incident(self) -> None:
        """`o`: record this walk on a new incident now (its steps so far go on the timeline)."""
        if self.walker is None or self.incident_id is not None or not self.oneiric.can_change:
            return
        self._ask_severity("Open an incident for this walk: its steps so far go on its timeline, and you are "
                           "its commander.", then=None, refused=None)

    def _ask_severity(self, body: str, *, then: Any, refused: str | None) -> None:
        walker = self.walker
        if walker is None:
            return
        incidents = Incidents(self.oneiric.engine)
        dialog = SeverityDialog(f"Open an incident: {walker.tree.title}", body, severity_choices(incidents),
                                severity_for(walker))
        self.app.push_screen(dialog, lambda sev: self._open_with(incidents, sev, then, refused))

    def _open_with(self, incidents: Incidents, severity: str | None, then: Any, refused: str | None) -> None:
        walker = self.walker
        if walker is None:
            return
        if not severity:
            if refused:
                self.notify(refused, severity="warning")
            return
        engine = self.oneiric.engine
        try:
            inc = open_for_walk(incidents, walker, severity, actor=engine.actor)
        except OneiricError as exc:
            self.notify(f"No incident was opened: {exc}", severity="error", markup=False)
            return
        self.incidents, self.incident_id = incidents, inc.id
        self.refresh_bindings()
        self.notify(f"Incident #{inc.id} ({inc.severity}) opened; you are its commander.", markup=False)
        self.render_all()
        if then is not None:
            then()

    def _close_step(self, values: dict[str, Any] | None) -> None:
        """The close-incident step, with the three fields the dialog asked for."""
        if not values or self.walker is None:
            return
        for name in ("resolution", "root_cause", "follow_ups"):
            self.walker.set_param(name, values[name])
        self._perform()

    @work(group="incident-walk", exit_on_error=False)
    async def _perform(self) -> None:
        walker = self.walker
        if walker is None:
            return
        self.busy = True
        self.render_all()
        try:
            outcome = await walker.perform(actor=self.oneiric.engine.actor)
        except MissingParam as exc:
            self.busy = False
            self._ask_for(exc)
            self.render_all()
            return
        except OneiricError as exc:
            self.busy = False
            self.notify(str(exc), severity="error", markup=False)
            self.render_all()
            return
        self.busy = False
        self.notify(outcome.message, markup=False, severity="warning" if outcome.outcome == "failed" else "information")
        self.oneiric.refresh_all()
        if walker.status == "waiting":
            if self.game_day is not None:
                await self.game_day.settle(walker)  # the drill's second person decides it
            self.oneiric.refresh_approvals()
            self._poller = self.set_interval(POLL_S, self._poll)
            self.render_all()
            return
        await self._run_checks()

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    @work(group="incident-poll", exclusive=True, exit_on_error=False)
    async def _poll(self) -> None:
        walker = self.walker
        if walker is None or walker.status != "waiting":
            self._stop_polling()
            return
        outcome = await walker.poll()
        if outcome is None:
            return
        self._stop_polling()
        who = f", approved by {outcome.approved_by}" if outcome.approved_by else ""
        self.notify(f"{outcome.outcome}{who}: {outcome.message}", markup=False)
        self.oneiric.refresh_all()
        self._advance()

    def action_note(self) -> None:
        if self.incident_id is None:
            return
        self.app.push_screen(TextPrompt(f"Note on incident #{self.incident_id}", "what you saw or did"),
                             self._add_note)

    def _add_note(self, text: str | None) -> None:
        if not text or self.incidents is None or self.incident_id is None:
            return
        try:
            self.incidents.note(self.incident_id, text)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
        self._render_timeline()

    def action_export(self) -> None:
        self._export(postmortem, "postmortem", "Post-mortem")

    def action_export_handoff(self) -> None:
        """`X`: the escalation hand-off (who owns it, what was tried, what is next)."""
        self._export(handoff, "handoff", "Hand-off")

    def _export(self, render, suffix: str, what: str) -> None:
        if self.incidents is None or self.incident_id is None:
            return
        try:
            markdown = render(self.incidents, self.incident_id)
            path = save(state_dir_path(self.oneiric.engine.state_dir, self.incident_id, suffix), markdown)
        except (OneiricError, OSError) as exc:
            self.notify(f"Export failed: {exc}", severity="error", markup=False)
            return
        self.last_export = path
        self.notify(f"{what} written to {path}", title="Exported", markup=False, timeout=15)

    def action_close_incident(self) -> None:
        """`C`: close the incident with its resolution, root cause and follow-ups (the fields of
        `oneiric incident close`); the walk can stay."""
        inc = self._incident()
        if inc is None:
            return
        self.app.push_screen(CloseIncidentDialog(inc.id, inc.title, root_cause=inc.root_cause,
                                                 follow_ups=inc.follow_ups), self._close)

    def _close(self, values: dict[str, Any] | None) -> None:
        if not values or self.incidents is None or self.incident_id is None:
            return
        try:
            inc = self.incidents.close(self.incident_id, values["resolution"], root_cause=values["root_cause"] or None,
                                       follow_ups=values["follow_ups"])
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"Incident #{inc.id} closed: {inc.resolution}", markup=False)
        self.render_all()

    def action_message(self) -> None:
        """`M`: the incident's announce / update / resolved message, ready to copy (OSC 52)."""
        if self.incident_id is None:
            return
        from .incident_message import MessageScreen

        self.app.push_screen(MessageScreen(self.incident_id), lambda _: self._render_timeline())
