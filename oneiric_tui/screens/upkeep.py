"""The upkeep view (`m`): the settings this console does not read, and the maintenance calendar.

Two things that keep a deployment honest and that nobody looks at until they bite:

* **Settings not read.** Upstream Oneiric's files (`oneiric.yaml`, `local.yaml`) or
  `ONEIRIC_CONFIG` beside our settings are ignored by this engine; the header marks it and this
  view says each one in full, with the command that imports it. It never calls such a
  directory valid.
* **Maintenance.** The runbook index's routine tasks (`maintenance.yml`), most urgent first,
  with the last time each was done and by whom. `x` marks the highlighted task done: a note
  is asked for, the dialog confirms only with `y`, and the core journals `maintenance-done`
  with the operator, exactly as `oneiric maintenance done TASK --note` does; its next due
  date moves on.

The screen holds no rule of its own: statuses, due dates and the notices are the core's
(read in upkeep.py), marking done is Calendar.mark_done. Task titles, notes, operators and
file paths are outside text and go through oneiric_core.text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static

from oneiric_core.errors import OneiricError
from oneiric_core.maintenance import Calendar, TaskState, when
from oneiric_core.text import multi_line, one_line, plain

from .. import format as fmt
from ..keys import vim_keys
from ..upkeep import Upkeep
from ..widgets.key_bar import KeyBar
from ..widgets.pane_table import PaneTable
from .confirm import GuardedDialog

if TYPE_CHECKING:
    from ..console_port import ConsoleState

# status -> (word, style): the word carries the meaning, the colour is a bonus
STATUS = {"overdue": ("OVERDUE", "red bold"), "due": ("DUE", "yellow bold"), "soon": ("soon", ""),
          "ok": ("ok", "dim")}
MUTATING = {"mark_done"}


def _when(ts: float | None) -> str:
    return "never" if ts is None else when(ts)


def _day(ts: float) -> str:
    return when(ts).split(" ", 1)[0]


def counts(upkeep: Upkeep) -> str:
    """"2 overdue, 3 due of 8 tasks" (nothing due: "nothing due of 8 tasks")."""
    due = len(upkeep.late) - upkeep.overdue
    words = [f"{upkeep.overdue} overdue"] if upkeep.overdue else []
    if due:
        words.append(f"{due} due")
    return f"{', '.join(words) or 'nothing due'} of {len(upkeep.tasks)} task{'' if len(upkeep.tasks) == 1 else 's'}"


class TaskTable(PaneTable):
    """One row per task, keyed by task id, the most urgent first."""

    BINDINGS = [*vim_keys("maintenance")]
    # Dates without the time, the runbook in the line under the table: the table fits 80 columns.
    COLUMNS = (("status", "STATUS"), ("task", "TASK"), ("every", "EVERY"), ("due", "NEXT DUE"),
               ("last", "LAST DONE BY"))

    def sync(self, upkeep: Upkeep) -> None:
        wanted: dict[str, tuple] = {}
        for state in upkeep.tasks:
            word, style = STATUS.get(upkeep.status(state), (upkeep.status(state), ""))
            last = "never" if state.last_done_at is None else \
                f"{_day(state.last_done_at)} {one_line(state.last_done_by or '?')}"
            wanted[state.task.id] = (Text(word, style=style), state.task.id, state.task.every,
                                     "now" if state.last_done_at is None else _day(state.due_at), last)
        if list(wanted) != list(self._rows):  # the order moved (a task done goes down): rebuild
            self.clear()
            self._rows.clear()
        self.sync_rows(wanted)


class DoneDialog(GuardedDialog):
    """Mark one task done, with an optional note. The note box has focus; `enter` in it hands
    focus to Cancel, and only `y` marks the task done (GuardedDialog's rules)."""

    AUTO_FOCUS = "#note"
    ACCEPT_ID = "confirm"
    ACCEPT_BINDING_ID = "maintenance.confirm"
    BINDINGS = [
        Binding("y", "accept", "Mark done", id="maintenance.confirm"),
        Binding("n", "reject", "Cancel", id="maintenance.no"),
        Binding("escape", "cancel", "Cancel", id="maintenance.cancel"),
    ]

    def __init__(self, state: TaskState, actor: str, next_due: float) -> None:
        super().__init__(title=f"Mark {state.task.id} done?", accept_label="Mark done")
        self.state = state
        self.actor = actor
        self.next_due = next_due
        self.note = ""

    def compose_body(self) -> Iterable[Widget]:
        task = self.state.task
        body = Text()
        body.append(f"{one_line(task.title)} ({task.every})\n", style="bold")
        if task.notes:
            body.append(f"{multi_line(task.notes)}\n")
        body.append(f"\nJournaled as done by {one_line(self.actor)} now; next due {when(self.next_due)}.")
        if task.runbook:
            body.append(f"\nIts procedure: oneiric runbook walk {one_line(task.runbook)}")
        yield Static(body, id="body")
        yield Input(placeholder="what was done (optional, journaled)", id="note")

    def _keys_text(self) -> str:
        return f"type a note, enter, then {self._accept_key}: mark done   esc: cancel"

    @on(Input.Submitted, "#note")
    def _note_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # enter never marks it done: it hands focus to Cancel, so the next `y` decides
        self.query_one("#cancel").focus()

    def _close(self, result: bool) -> None:
        self.note = self.query_one("#note", Input).value.strip()
        super()._close(result)


class UpkeepScreen(Screen):
    """Settings not read and the maintenance calendar. One instance lives as long as the console."""

    DEFAULT_CSS = """
    UpkeepScreen #up-head { height: 1; padding: 0 1; background: $panel; }
    UpkeepScreen #up-settings-box { height: auto; max-height: 40%; border: round $panel-lighten-2; padding: 0 1; }
    UpkeepScreen #up-tasks { height: 1fr; border: round $accent; }
    UpkeepScreen #up-task { height: auto; max-height: 6; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="upkeep.leave"),
        Binding("x", "mark_done", "Done", id="maintenance.done"),
        Binding("question_mark", "help", "Help", id="upkeep.help"),
        Binding("q", "app.quit_console", "Quit", id="upkeep.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.upkeep: Upkeep | None = None

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="up-head")
        with VerticalScroll(id="up-settings-box"):
            yield Static(id="up-settings")
        yield TaskTable(id="up-tasks")
        yield Static(id="up-task")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#up-settings-box").border_title = "Settings"
        self.query_one("#up-tasks").border_title = "Maintenance calendar (j/k, x marks done)"
        if self.oneiric.upkeep is not None:
            self.show(self.oneiric.upkeep)

    def on_screen_resume(self) -> None:
        self.query_one(TaskTable).focus()
        self.oneiric.refresh_upkeep()

    # -- rendering -------------------------------------------------------------------------------
    def show(self, upkeep: Upkeep) -> None:
        self.upkeep = upkeep
        head = Text()
        head.append(" Upkeep ", style="bold reverse")
        head.append(f"  maintenance: {counts(upkeep)}")
        if upkeep.not_read:
            head.append(f" | settings: {len(upkeep.not_read)} NOT READ", style="bold yellow")
        self.query_one("#up-head", Static).update(head)
        self.query_one("#up-settings", Static).update(self._settings_text(upkeep))
        self.query_one(TaskTable).sync(upkeep)
        self._show_task()

    def _settings_text(self, upkeep: Upkeep) -> Text:
        engine = self.oneiric.engine
        text = Text()
        text.append(f"settings: {one_line(engine.settings_dir)}   state: {one_line(engine.state_dir)}")
        for notice in upkeep.not_read:
            text.append("\nNOT READ: ", style="bold yellow")
            text.append(multi_line(notice))
        for problem in engine.settings.problems:
            text.append("\nconfig invalid: ", style="bold red")
            text.append(multi_line(f"{problem}; {engine.settings.fallback(problem)}"))
        if not upkeep.not_read and not engine.settings.problems:
            text.append("\napp.yml and the domain files are in force; no upstream Oneiric settings file or "
                        "variable is in sight.")
        if upkeep.error:
            text.append("\nmaintenance: ", style="bold red")
            text.append(multi_line(upkeep.error))
        elif upkeep.file is not None:
            text.append(f"\nmaintenance tasks from {one_line(upkeep.file)}", style="dim")
        return text

    @on(TaskTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._show_task()

    def selected(self) -> TaskState | None:
        key = self.query_one(TaskTable).selected_key
        tasks = self.upkeep.tasks if self.upkeep is not None else []
        return next((s for s in tasks if s.task.id == key), None)

    def _show_task(self) -> None:
        state, upkeep = self.selected(), self.upkeep
        if state is None or upkeep is None:
            self.query_one("#up-task", Static).update(
                "No maintenance task is loaded." if upkeep is None or not upkeep.tasks else "")
            return
        text = plain(f"{state.task.title}: ", "bold")
        text.append(multi_line(state.task.notes or "no notes"))
        if state.last_done_at is not None:
            text.append(f"\nlast done {_when(state.last_done_at)} ({fmt.ago(state.last_done_at, upkeep.at)} ago) by "
                        f"{one_line(state.last_done_by or '?')}" + (f": {one_line(state.last_note)}"
                                                                      if state.last_note else ""))
        if state.last_done_at is not None:
            text.append(f"\nnext due {_when(state.due_at)}")
        if state.task.runbook:
            text.append(f"\nprocedure: oneiric runbook walk {one_line(state.task.runbook)}", style="dim")
        self.query_one("#up-task", Static).update(text)

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.disabled_reason(action) is not None:
            return None
        return True

    def disabled_reason(self, action: str) -> str | None:
        if action in MUTATING and not self.oneiric.can_change:
            return self.oneiric.why_not()
        return None

    def help_nodes(self) -> list[Widget]:
        return [self.query_one(TaskTable)]

    def on_key(self, event: events.Key) -> None:
        """`x` when nothing can be changed here says why, instead of doing nothing."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.binding.id != "maintenance.done":
            return
        event.stop()
        state = self.selected()
        doing = f"mark {state.task.id} done" if state is not None else "mark the highlighted task done"
        self.notify(self.oneiric.refusal("mark done", doing, self.app.get_key_display(active.binding)),
                    severity="warning", markup=False)

    def action_leave(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))

    def action_mark_done(self) -> None:
        state = self.selected()
        if state is not None:
            self.ask_done(state.task.id)

    def ask_done(self, task_id: str) -> None:
        """Ask for a note and a `y`, then mark `task_id` done (also the palette's "Mark done")."""
        try:
            calendar = Calendar(self.oneiric.engine)
            task = calendar.task(task_id)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        state = next(s for s in calendar.states() if s.task.id == task.id)
        dialog = DoneDialog(state, self.oneiric.engine.actor, time.time() + task.period_s)
        self.app.push_screen(dialog, lambda ok: self._done(calendar, task.id, dialog.note) if ok else None)

    def _done(self, calendar: Calendar, task_id: str, note: str) -> None:
        """Journaled by the core with this console's operator (`maintenance-done`)."""
        engine = self.oneiric.engine
        try:
            state = calendar.mark_done(task_id, actor=engine.actor, note=note)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self.notify(f"Marked {state.task.id} done by {engine.actor}; next due {_when(state.due_at)}.", markup=False)
        self.oneiric.refresh_upkeep()
