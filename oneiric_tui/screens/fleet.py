"""The fleet view (`:fleet`): every node with its health roll-up, and a key x node matrix of
the provider each node serves and its health, drift marked (oneiric_core.fleet decides what
drift is; this screen only draws it). `enter` on a node opens that node's panes (the app
starts again as a client of that node's host: OneiricApp.open_node).

Read from the store in a thread every few seconds, so a node going stale shows here without
anyone pressing a key. The matrix is a RowTable (widgets/row_table.py: drawn with the line
API, only the rows on screen), its cells built in the reading thread, and each reading updates
it in place, so at 50 nodes x 200 keys neither the first frame nor a refresh lays out 10,000
cells. Node names, providers and reasons are outside text: plain, one line each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from oneiric_core.fleet import Fleet, FleetNode, FleetRow
from oneiric_core.fleet import fleet_view as read_fleet
from oneiric_core.humanize import age
from oneiric_core.store import StoreError
from oneiric_core.text import one_line

from ..widgets.key_bar import KeyBar
from ..widgets.pane_table import PaneTable
from ..widgets.row_table import RowTable

if TYPE_CHECKING:
    from oneiric_core.engine import Engine

REFRESH_S = 2.0
DRIFT_MARK = "≠"
HEALTH_STYLE = {"ok": "green", "degraded": "yellow", "failed": "bold red", "failing": "bold red", "stale": "bold red",
                "stopped": "dim", "paused": "yellow", "unknown": "dim"}
NODE_COLUMNS = ("node", "state", "health", "version", "heartbeat", "serving", "failing", "paused", "misconf")


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
    line.append("   enter: that node's panes", style="dim")
    return line


def node_cells(node: FleetNode, here: str) -> list[Text]:
    """One row of the nodes table; this console's own node is marked with `*`."""
    summary = node.summary
    heartbeat = "-" if node.state == "stopped" else f"{age(0.0, node.heartbeat_age_s)} ago"
    name = Text(("* " if node.name == here else "  ") + one_line(node.name), style="bold")
    return [name, Text(node.state, style=HEALTH_STYLE.get(node.state, "")),
            Text(node.health, style=HEALTH_STYLE.get(node.health, "")), Text(one_line(node.version or "-")),
            Text(heartbeat), Text(str(summary.serving)),
            Text(str(summary.failing), style="bold red" if summary.failing else ""),
            Text(str(summary.paused), style="yellow" if summary.paused else ""), Text(str(summary.misconfigured))]


def matrix_cells(row: FleetRow, names: Sequence[str]) -> list[Text]:
    """One row of the key x node matrix: drift mark, key, what the settings select, each node's
    provider and health, why the row drifts."""
    cells: list[Text] = [Text(DRIFT_MARK, style="bold yellow") if row.drift else Text(""),
                         Text(one_line(row.ref)), Text(one_line(row.selected or "-"))]
    for name in names:
        cell = row.cells.get(name)
        if cell is None:
            cells.append(Text("-", style="dim"))
            continue
        text = Text(one_line(cell.provider or "-"))
        text.append(f" {cell.health}", style=HEALTH_STYLE.get(cell.health, ""))
        cells.append(text)
    cells.append(Text(one_line(row.drift or ""), style="yellow"))
    return cells


class NodesTable(PaneTable):
    """One row per node (node_cells), kept current in place (PaneTable.sync_rows)."""

    COLUMNS = tuple((name, name.upper()) for name in NODE_COLUMNS)

    def show(self, rows: dict[str, list[Text]]) -> None:
        """Hold `rows` in their order: a node that sorts among those shown (rare: nodes seldom
        come) fills the table again, since sync_rows adds new rows last."""
        kept = [key for key in self._rows if key in rows]
        if list(rows)[:len(kept)] != kept:
            self.sync_rows({})
        self.sync_rows({key: tuple(cells) for key, cells in rows.items()})


def matrix_widths(rows: Sequence[FleetRow], names: Sequence[str]) -> list[int]:
    """How wide each matrix column's cells are, from their plain text (matrix_cells draws them)."""
    widths = [1, 0, 0, *(0 for _ in names), 0]
    for row in rows:
        widths[1] = max(widths[1], cell_len(one_line(row.ref)))
        widths[2] = max(widths[2], cell_len(one_line(row.selected or "-")))
        for i, name in enumerate(names, start=3):
            cell = row.cells.get(name)
            width = 1 if cell is None else cell_len(one_line(cell.provider or "-")) + 1 + len(cell.health)
            widths[i] = max(widths[i], width)
        widths[-1] = max(widths[-1], cell_len(one_line(row.drift or "")))
    return widths


class FleetMatrix(RowTable):
    """The key x node matrix: one row per key, a column per node (matrix_for gives the columns).
    A row's cells are built when it is drawn: at 200 keys x 50 nodes most are never on screen."""

    BINDINGS: ClassVar[list[Any]] = [
        *RowTable.BINDINGS,
        Binding("right", "scroll_right", "Right", show=False),
        Binding("left", "scroll_left", "Left", show=False),
    ]
    NAMES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fleet_rows: dict[str, FleetRow] = {}

    def row_cells(self, key: Hashable) -> tuple:
        row = self.fleet_rows.get(str(key))
        return tuple(matrix_cells(row, self.NAMES)) if row is not None else ()

    def load(self, rows: Sequence[FleetRow], widths: Sequence[int]) -> None:
        """Hold `rows` (in place: rows gone removed, the rest redrawn if on screen)."""
        wanted = {row.ref: row for row in rows}
        for key in [k for k in self.ordered_keys if k not in wanted]:
            self.remove_row(key)
            self.fleet_rows.pop(str(key), None)
        self.widen(widths)
        for ref, row in wanted.items():
            self.fleet_rows[ref] = row
            self.upsert(ref, ref)


def matrix_for(names: Sequence[str]) -> FleetMatrix:
    """A matrix whose columns are these nodes' (RowTable's columns are its class's)."""
    columns = (("drift-mark", ""), ("key", "key"), ("settings", "settings"),
               *((f"node:{n}", one_line(n)) for n in names), ("drift", "drift"))
    kind = type("FleetMatrix", (FleetMatrix,), {"COLUMNS": columns, "NAMES": tuple(names)})
    return kind(id="fleet-matrix")


class FleetScreen(Screen):
    DEFAULT_CSS = """
    FleetScreen #fleet-head { height: 1; padding: 0 1; background: $panel; }
    FleetScreen #fleet-nodes { height: auto; max-height: 40%; }
    FleetScreen #fleet-matrix { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="fleet.leave"),
        Binding("enter", "open_node", "Open node", id="fleet.open"),
        Binding("d", "toggle_drift", "Drift only", id="fleet.drift"),
        Binding("r", "reload", "Refresh", id="fleet.refresh"),
        Binding("q", "app.quit_console", "Quit", show=False, id="fleet.quit"),
    ]

    def __init__(self, engine: Engine) -> None:
        """The first reading starts now, in a thread, while the screen is composed and mounted
        (at 50 nodes x 200 keys it is a third of the time to the first frame)."""
        super().__init__()
        self.engine = engine
        self.drift_only = False
        self.fleet: Fleet | None = None
        self._first: Future[tuple[Fleet, list[int]]] = Future()
        threading.Thread(target=self._read_first, name="fleet-first-reading", daemon=True).start()

    def _read(self) -> tuple[Fleet, list[int]]:
        """A reading of the fleet, with the matrix's column widths for it (every row's, drifted
        or not: `d` keeps them)."""
        fleet = read_fleet(self.engine)
        return fleet, matrix_widths(fleet.rows, [n.name for n in fleet.nodes])

    def _read_first(self) -> None:
        try:
            self._first.set_result(self._read())
        except BaseException as exc:  # noqa: BLE001 - handed to the screen, which says it
            self._first.set_exception(exc)

    def compose(self) -> ComposeResult:
        yield Static(Text(" Fleet ", style="bold reverse"), id="fleet-head")
        yield NodesTable(id="fleet-nodes")
        yield KeyBar()  # the matrix comes with the first reading: its columns are the nodes

    def on_mount(self) -> None:
        self._show_first()
        self.set_interval(REFRESH_S, self.action_reload)

    @work(thread=True, exclusive=True, group="fleet", exit_on_error=False)
    def _show_first(self) -> None:
        self._deliver(self._first.result)

    @work(thread=True, exclusive=True, group="fleet", exit_on_error=False)
    def action_reload(self) -> None:
        self._deliver(self._read)

    def _deliver(self, reading: Callable[[], tuple[Fleet, list[int]]]) -> None:
        """In a worker thread: show what `reading` gives, or say in one line why it could not."""
        try:
            fleet, widths = reading()
        except StoreError as exc:
            self.app.call_from_thread(self.notify, f"cannot read the fleet: {exc}", severity="error", markup=False)
            return
        self.app.call_from_thread(self.show, fleet, widths)

    def show(self, fleet: Fleet, widths: list[int]) -> None:
        self.fleet = fleet
        here = self.engine.node
        self.query_one("#fleet-head", Static).update(nodes_line(fleet))
        self.query_one(NodesTable).show({n.name: node_cells(n, here) for n in fleet.nodes})
        found = self.query(FleetMatrix)
        matrix = found.first() if found else None
        columns = [f"node:{n.name}" for n in fleet.nodes]
        if matrix is None or [key for key, _ in matrix.COLUMNS[3:-1]] != columns:  # a node came or went
            self.call_later(self._new_matrix, fleet, widths)
            return
        matrix.load(fleet.drifted if self.drift_only else fleet.rows, widths)

    async def _new_matrix(self, fleet: Fleet, widths: list[int]) -> None:
        """A matrix with a column per node of `fleet`, in place of the one there, then filled."""
        found = self.query(FleetMatrix)
        focused = bool(found) and found.first().has_focus
        await found.remove()
        matrix = matrix_for([n.name for n in fleet.nodes])
        await self.mount(matrix, after=self.query_one("#fleet-nodes"))
        if focused:
            matrix.focus()
        self.show(fleet, widths)

    def selected_node(self) -> str | None:
        """The node under the nodes table's cursor (None before the first reading)."""
        return self.query_one(NodesTable).selected_key

    def action_open_node(self) -> None:
        if isinstance(self.focused, FleetMatrix):
            self.notify("enter opens a node from the nodes table above (shift+tab goes there).", markup=False)
            return
        name = self.selected_node()
        if name is None:
            self.notify("No node yet: no host has run on this store.", severity="warning", markup=False)
            return
        self.app.open_node(name)  # type: ignore[attr-defined]

    @on(DataTable.RowSelected, "#fleet-nodes")
    def _node_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_node()


    def action_toggle_drift(self) -> None:
        self.drift_only = not self.drift_only
        if self.fleet is not None:
            self.show(self.fleet, matrix_widths(self.fleet.rows, [n.name for n in self.fleet.nodes]))

    def action_leave(self) -> None:
        self.app.pop_screen()


__all__ = ["FleetMatrix", "FleetScreen", "NodesTable", "matrix_cells", "matrix_for", "matrix_widths", "node_cells",
           "nodes_line"]
