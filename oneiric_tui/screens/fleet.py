"""The fleet view (`:fleet`): every node with its health roll-up, and a key x node matrix of
the provider each node serves and its health, drift marked (oneiric_core.fleet decides what
drift is; this screen only draws it). Read from the store in a thread every few seconds, so a
node going stale shows here without anyone pressing a key. Node names, providers and reasons
are outside text: plain, one line each."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from oneiric_core.fleet import Fleet, fleet_view
from oneiric_core.store import StoreError
from oneiric_core.text import one_line

from ..widgets.key_bar import KeyBar

REFRESH_S = 2.0
DRIFT_MARK = "≠"
HEALTH_STYLE = {"ok": "green", "degraded": "yellow", "failed": "bold red", "failing": "bold red", "stale": "bold red",
                "stopped": "dim", "paused": "yellow", "unknown": "dim"}


def nodes_line(fleet: Fleet) -> Text:
    line = Text()
    line.append(" Fleet ", style="bold reverse")
    if not fleet.nodes:
        line.append("  no host has run on this store yet")
        return line
    for node in fleet.nodes:
        line.append("  ")
        line.append(one_line(node.name), style="bold")
        line.append(" ")
        line.append(node.health, style=HEALTH_STYLE.get(node.health, ""))
    drift = len(fleet.drifted)
    line.append(f"   {drift} of {len(fleet.rows)} keys drift" if drift else f"   no drift ({len(fleet.rows)} keys)",
                style="bold yellow" if drift else "dim")
    return line


class FleetScreen(Screen):
    DEFAULT_CSS = """
    FleetScreen #fleet-head { height: 1; padding: 0 1; background: $panel; }
    FleetScreen #fleet-matrix { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="fleet.leave"),
        Binding("d", "toggle_drift", "Drift only", id="fleet.drift"),
        Binding("r", "reload", "Refresh", id="fleet.refresh"),
        Binding("q", "app.quit_console", "Quit", show=False, id="fleet.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.drift_only = False
        self.fleet: Fleet | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(" Fleet ", style="bold reverse"), id="fleet-head")
        yield DataTable(id="fleet-matrix", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(REFRESH_S, self.action_reload)

    @work(thread=True, exclusive=True, group="fleet", exit_on_error=False)
    def action_reload(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            fleet = fleet_view(engine)
        except StoreError as exc:
            self.app.call_from_thread(self.notify, f"cannot read the fleet: {exc}", severity="error", markup=False)
            return
        self.app.call_from_thread(self.show, fleet)

    def show(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.query_one("#fleet-head", Static).update(nodes_line(fleet))
        table = self.query_one("#fleet-matrix", DataTable)
        names = [n.name for n in fleet.nodes]
        table.clear(columns=True)
        table.add_columns("", "key", "settings", *(one_line(n) for n in names), "drift")
        for row in fleet.drifted if self.drift_only else fleet.rows:
            cells: list[Text] = []
            for name in names:
                cell = row.cells.get(name)
                if cell is None:
                    cells.append(Text("-", style="dim"))
                    continue
                text = Text(one_line(cell.provider or "-"))
                text.append(f" {cell.health}", style=HEALTH_STYLE.get(cell.health, ""))
                cells.append(text)
            mark = Text(DRIFT_MARK, style="bold yellow") if row.drift else Text("")
            table.add_row(mark, Text(one_line(row.ref)), Text(one_line(row.selected or "-")), *cells,
                          Text(one_line(row.drift or ""), style="yellow"), key=row.ref)

    def action_toggle_drift(self) -> None:
        self.drift_only = not self.drift_only
        if self.fleet is not None:
            self.show(self.fleet)

    def action_leave(self) -> None:
        self.app.pop_screen()


__all__ = ["FleetScreen", "nodes_line"]
