"""The journal, full screen (`L`, or `:log at 14:02`): every event, not only the changes.

What an operator reading back through a night needs: the whole journal (incident and upkeep
events included, which the swap log pane leaves to their views), columns as wide as what they
hold, `F` to follow the newest or stay on the line being read, `w` to fold long lines or keep
one event per row, `/` to filter as in the swap log, `:` for the command line as on the main
view (`:log at 14:02` jumps to the first event at or after a time, `:log FILTER` filters this
view; a command that needs the main view's panes goes back to it first), and `y` to copy
the line under the cursor for a chat hand-off. The copy goes to the terminal as OSC 52
(Textual's App.copy_to_clipboard), which puts it on the operator's own clipboard even over SSH.

It starts from the store's newest events and then takes the live ones the app forwards
(`add`). The rules (what matches a filter, which moment `14:02` is) live in oneiric_core and
the swap log; this screen only shows and moves.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from oneiric_core.errors import OneiricError
from oneiric_core.events import Event
from oneiric_core.journal_view import first_at_or_after
from oneiric_core.text import plain

from ..command_line import BY_NAME, CommandLine, Vocabulary, parse
from ..keys import vim_keys
from ..widgets.journal_lines import JournalLines
from ..widgets.key_bar import KeyBar
from ..widgets.swap_log import LogFilter

if TYPE_CHECKING:
    from ..console_port import ConsoleState

KEEP = 5000  # events kept (and read from the store when the view opens)


class JournalScreen(Screen):
    AUTO_FOCUS = "#journal-lines"  # never the filter box, hidden until `/`
    DEFAULT_CSS = """
    JournalScreen #journal-head { height: 1; padding: 0 1; background: $panel; }
    JournalScreen #journal-lines { height: 1fr; }
    JournalScreen #journal-filter { display: none; }
    JournalScreen #journal-command { display: none; }
    """
    BINDINGS = [
        Binding("F", "toggle_follow", "Follow", id="journal.follow"),
        Binding("w", "toggle_wrap", "Wrap", id="journal.wrap"),
        Binding("y", "copy_line", "Copy line", id="journal.copy"),
        Binding("slash", "filter", "Filter", id="journal.filter"),
        Binding("colon", "command_line", "Command", show=False, id="journal.command"),
        Binding("escape", "leave", "Back", id="journal.leave"),
        *vim_keys("journal", top="cursor_top", bottom="cursor_bottom"),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("question_mark", "help", "Help", show=False, id="journal.help"),
        Binding("q", "app.quit_console", "Quit", show=False, id="journal.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._events: deque[Event] = deque(maxlen=KEEP)
        self._seen: set[int] = set()
        self.filter = LogFilter()
        self._composed = False  # events that come before the lines exist are kept and shown at mount
        self._words = Vocabulary()  # the command line's completion, as of its opening

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    @property
    def lines(self) -> JournalLines:
        return self.query_one("#journal-lines", JournalLines)

    def compose(self) -> ComposeResult:
        yield Static(id="journal-head")
        yield Input(placeholder="filter: words, kind:swap-rollback, domain:adapter, key:cache, sev:error"
                    + (", node:web-2" if self.oneiric.fleet_store else ""),
                    id="journal-filter")
        yield JournalLines(KEEP, nodes=self.oneiric.fleet_store, id="journal-lines")
        yield CommandLine(self._vocabulary, id="journal-command")
        yield KeyBar()

    def on_mount(self) -> None:
        self._composed = True
        try:
            history = self.oneiric.engine.journal(limit=KEEP)
        except OneiricError as exc:
            history = []
            self.notify(f"The journal could not be read: {exc}", severity="error", markup=False)
        self.add(history)
        self._show_head()

    # -- content ---------------------------------------------------------------------------
    def add(self, events: list[Event]) -> None:
        """Append events (by id once: the store's history and the live ones may overlap)."""
        fresh = []
        for event in events:
            if event.id is not None:
                if event.id in self._seen:
                    continue
                self._seen.add(event.id)
            self._events.append(event)
            if self.filter.matches(event):
                fresh.append(event)
        if len(self._seen) > KEEP * 2:
            self._seen = {e.id for e in self._events if e.id is not None}
        if fresh and self._composed:
            self.lines.add(fresh)
            self._show_head()

    def visible_events(self) -> list[Event]:
        return self.lines.events

    def _show_head(self) -> None:
        lines = self.lines
        head = Text()
        head.append(" Journal ", style="bold reverse")
        head.append(f"  {len(lines)} events")
        head.append(f"  follow {'on' if lines.follow else 'off'} (F)  wrap {'on' if lines.wrap else 'off'} (w)")
        if self.filter.active:
            head.append("  filter: ")
            head.append(plain(self.filter.describe()))
        head.append("  |  y copies the line, / filters, esc back", style="dim")
        self.query_one("#journal-head", Static).update(head)

    def apply_filter(self, text: str) -> None:
        self.filter = LogFilter.parse(text)
        lines = self.lines
        lines.clear()
        lines.add([e for e in self._events if self.filter.matches(e)])
        self._show_head()

    def jump_to(self, moment: float) -> str:
        """Put the cursor on the first shown event at or after `moment` and stop following;
        the sentence saying where it went."""
        lines = self.lines
        events = lines.events
        if not events:
            return "The journal view is empty."
        index = first_at_or_after([e.ts for e in events], moment)
        self._set_follow(False)
        if index is None:
            lines.move_cursor(len(events) - 1)
            return "No event at or after that time: the cursor is on the newest."
        lines.move_cursor(index)
        if index == 0 and events[0].ts > moment:
            return ("The view keeps nothing older: the cursor is on its oldest event "
                    "(oneiric journal reads further back).")
        return f"At event #{events[index].id}."

    # -- actions ---------------------------------------------------------------------------
    def _set_follow(self, follow: bool) -> None:
        lines = self.lines
        lines.follow = follow
        if follow:
            lines.move_cursor(len(lines) - 1)
            lines.scroll_end(animate=False, immediate=True, x_axis=False)
        self._show_head()

    def action_toggle_follow(self) -> None:
        self._set_follow(not self.lines.follow)

    def action_toggle_wrap(self) -> None:
        self.lines.set_wrap(not self.lines.wrap)
        self._show_head()

    def action_copy_line(self) -> None:
        text = self.lines.cursor_text()
        if not text:
            self.notify("No line to copy: the journal view is empty.", severity="warning", markup=False)
            return
        self.app.copy_to_clipboard(text)
        shown = " ".join(text.split())  # the columns' padding is not worth a toast's room
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        event = self.lines.cursor_event
        what = f"event #{event.id}" if event is not None and event.id is not None else "the line"
        self.notify(f"Copied {what} to the clipboard (OSC 52): {shown}", markup=False)

    def _move(self, index: int) -> None:
        if self.lines.follow and index < len(self.lines) - 1:
            self._set_follow(False)  # moving up to read stops following; F follows again
        self.lines.move_cursor(index)

    def action_cursor_down(self) -> None:
        self._move(self.lines.cursor + 1)

    def action_cursor_up(self) -> None:
        self._move(self.lines.cursor - 1)

    def action_cursor_top(self) -> None:
        self._move(0)

    def action_cursor_bottom(self) -> None:
        self._move(len(self.lines) - 1)

    def action_page(self, step: int) -> None:
        self._move(self.lines.cursor + step * max(1, self.lines.scrollable_content_region.height - 1))

    def action_filter(self) -> None:
        box = self.query_one("#journal-filter", Input)
        box.display = True
        box.value = self.filter.describe()
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.lines.focus()
        if isinstance(event.input, CommandLine):
            self.run_command(event.value)
        else:
            self.apply_filter(event.value)

    # -- the `:` command line ----------------------------------------------------------------
    def _vocabulary(self) -> Vocabulary:
        return self._words

    def action_command_line(self) -> None:
        main = getattr(self.app, "main", None)
        self._words = main.vocabulary() if main is not None else Vocabulary()  # once per line, as on the main view
        box = self.query_one("#journal-command", CommandLine)
        box.value = ""
        box.display = True
        box.focus()

    def run_command(self, line: str) -> None:
        """`:log FILTER` filters this view and `:log at 14:02` moves its cursor; a command that
        needs the main view's panes (pause, swap, explain...) goes back to it and runs there;
        any other (help, theme, incidents, q) runs over this view. The main view's run_command
        does the running, so every command does here what it does there (its dialogs, its
        refusals, its one sentence for a wrong line)."""
        command = parse(line.strip().lstrip(":"))
        main = getattr(self.app, "main", None)
        if not isinstance(command, str) and command.name == "log" and command.word(0) != "at":
            self.apply_filter(command.word(0) or "")
            return
        if main is None:
            return
        spec = None if isinstance(command, str) else BY_NAME.get(command.name)
        if spec is not None and not spec.anywhere and spec.name != "log":
            self.app.pop_screen()
        main.run_command(line)

    def action_leave(self) -> None:
        for box in (self.query_one("#journal-filter", Input), self.query_one("#journal-command", CommandLine)):
            if box.display:  # esc in the filter box closes it, keeping the filter
                box.display = False
                self.lines.focus()
                return
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))


__all__ = ["KEEP", "JournalScreen"]
