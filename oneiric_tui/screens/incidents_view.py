"""The incidents view (`I`, or "Incidents" in the palette): every incident not closed.

One row per incident, the most severe first: its number and severity, its age against the
severity's response target (OVER once past it), its commander, where its walk stands, and its
title. `enter` resumes the highlighted incident's walk in the incident panel (any of them,
not only the latest), `C` closes it (resolution, root cause, follow-ups), `M` shows its
messages ready to copy. The rows come from oneiric_core.runbooks.board; nothing is decided
here. The ages move on with the app's clock, once a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from oneiric_core.errors import OneiricError
from oneiric_core.runbooks.board import BoardRow, board
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.text import one_line, plain

from ..keys import vim_keys
from ..widgets.key_bar import KeyBar
from ..widgets.pane_table import PaneTable

if TYPE_CHECKING:
    from ..console_port import ConsoleState


def clock_span(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class IncidentTable(PaneTable):
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("id", "#"), ("sev", "sev"), ("age", "age / respond within"), ("cmdr", "commander"), ("walk", "walk"),
        ("title", "title"))
    BINDINGS = vim_keys("incidents", top="scroll_top", bottom="scroll_bottom")


class FleetIncidentTable(IncidentTable):
    """On a fleet store the incidents are every node's: a column says which node each was opened on."""

    COLUMNS = (("id", "#"), ("node", "node"), *IncidentTable.COLUMNS[1:])


class IncidentsScreen(Screen):
    DEFAULT_CSS = """
    IncidentsScreen #incidents-head { height: auto; padding: 0 1; background: $panel; }
    IncidentsScreen #incidents-box { height: 1fr; border: round $panel-lighten-2; }
    IncidentsScreen #incidents-empty { padding: 1 2; color: $text-muted; }
    """
    BINDINGS = [
        Binding("enter", "resume", "Resume", id="incidents.resume"),
        Binding("C", "close_incident", "Close", id="incidents.close"),
        Binding("M", "message", "Message", id="incidents.message"),
        Binding("escape", "leave", "Back", id="incidents.leave"),
        Binding("question_mark", "help", "Help", show=False, id="incidents.help"),
        Binding("q", "app.quit_console", "Quit", show=False, id="incidents.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[BoardRow] = []

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="incidents-head")
        with Vertical(id="incidents-box"):
            table = FleetIncidentTable if self.oneiric.fleet_store else IncidentTable
            yield table(id="incidents-table")
            yield Static("", id="incidents-empty")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#incidents-box").border_title = "Open incidents"
        self.set_interval(1.0, self._tick)

    def on_screen_resume(self) -> None:
        self.refresh_rows()
        self.query_one(IncidentTable).focus()

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_rows()

    # -- rows ----------------------------------------------------------------------------------
    def refresh_rows(self) -> None:
        app = self.oneiric
        try:
            self.rows = board(Incidents(app.engine), now=app.clock())
        except OneiricError as exc:
            self.rows = []
            self.query_one("#incidents-empty", Static).update(plain(exc))
            return
        table = self.query_one(IncidentTable)
        wanted: dict[str, tuple[Any, ...]] = {}
        for row in self.rows:
            inc = row.incident
            age = clock_span(row.age_s)
            if row.response_s is not None:
                age += f" / {clock_span(row.response_s)}"
            age_cell = Text(age + (" OVER" if row.over_target else ""), style="bold red" if row.over_target else "")
            cells: tuple[Any, ...] = (f"#{inc.id}", inc.severity, age_cell, inc.commander, row.where(), inc.title)
            if isinstance(table, FleetIncidentTable):
                cells = (cells[0], Text(one_line(inc.node or "-"), style="magenta"), *cells[1:])
            wanted[str(inc.id)] = cells
        table.sync_rows(wanted)
        count = len(self.rows)
        head = Text()
        head.append(" Incidents ", style="bold reverse")
        head.append(f"  {count} not closed" if count else "  none open")
        head.append("  |  enter resume its walk, C close, M message", style="dim")
        self.query_one("#incidents-head", Static).update(head)
        empty = self.query_one("#incidents-empty", Static)
        empty.update("" if count else "No incident is open. A walk opens one with o, or at its first change.")
        empty.display = not count

    def selected(self) -> BoardRow | None:
        table = self.query_one(IncidentTable)
        if not self.rows or table.cursor_row is None or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor: nothing selected
            return None
        return next((r for r in self.rows if str(r.incident.id) == key), None)

    def select_incident(self, incident_id: int) -> None:
        table = self.query_one(IncidentTable)
        try:
            table.move_cursor(row=table.get_row_index(str(incident_id)))
        except Exception:  # noqa: BLE001 - not listed (closed meanwhile)
            pass

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("resume", "close_incident") and not self.oneiric.can_change:
            return None
        return True

    @on(DataTable.RowSelected, "#incidents-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_resume()

    def action_resume(self) -> None:
        row = self.selected()
        if row is None:
            return
        if not row.resumable:
            self.notify(f"Incident #{row.incident.id} has no walk to resume (it was opened outside one); "
                        "C closes it, M prepares its messages.", severity="warning", markup=False)
            return
        from .incident import IncidentScreen

        self.app.pop_screen()
        if not self.app.is_screen_installed("incident"):
            self.app.install_screen(IncidentScreen(), "incident")
        screen = self.app.get_screen("incident")
        if self.app.screen is not screen:
            self.app.push_screen("incident")
        screen.resume_incident(row.incident.id)  # type: ignore[attr-defined]

    def action_close_incident(self) -> None:
        row = self.selected()
        if row is None:
            return
        from .incident_dialogs import CloseIncidentDialog

        inc = row.incident
        self.app.push_screen(CloseIncidentDialog(inc.id, inc.title, root_cause=inc.root_cause,
                                                 follow_ups=inc.follow_ups),
                             lambda values: self._close(inc.id, values))

    def _close(self, incident_id: int, values: dict[str, Any] | None) -> None:
        if not values:
            return
        try:
            inc = Incidents(self.oneiric.engine).close(incident_id, values["resolution"],
                                                       root_cause=values["root_cause"] or None,
                                                       follow_ups=values["follow_ups"])
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"Incident #{inc.id} closed: {one_line(inc.resolution)}", markup=False)
        self.refresh_rows()

    def action_message(self) -> None:
        row = self.selected()
        if row is None:
            return
        from .incident_message import MessageScreen

        self.app.push_screen(MessageScreen(row.incident.id))

    def action_leave(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))
