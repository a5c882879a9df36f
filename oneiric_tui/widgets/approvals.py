"""Pending approvals: who asked, when, from -> to, why. Rows are keyed by proposal id (one
sequence in a store, so unique across a fleet's nodes). On a fleet store (`sync(...,
nodes=True)`) the pane lists every node's proposals with a NODE column first; approving one
sends it to that node's host (operator_port.FleetRoute). A one-node store has no NODE column.

Long texts (a provider's name, who asked, the reason) are cut with an ellipsis at fixed
widths when the rows would not fit the pane whole, so a row fits (80 cells at 120 columns)
and the columns stay aligned; zoomed (z), or in the approval dialog and `oneiric
approvals`, they show whole."""

from __future__ import annotations

from rich.cells import cell_len
from textual.binding import Binding

from oneiric_core.store import ProposalRecord
from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from .pane_table import PaneTable

COLUMNS = (("id", "#"), ("component", "COMPONENT"), ("change", "FROM -> TO"), ("by", "ASKED BY"),
           ("when", "WHEN"), ("why", "WHY"))
FLEET_COLUMNS = (("node", "NODE"), *COLUMNS)
# The widest each cut column may be when the row does not fit (the reason: at least; it gets
# the room left). The component is our own domain/key, kept whole.
CHANGE_WIDTH, BY_WIDTH, WHY_WIDTH = 18, 12, 15


class ApprovalsTable(PaneTable):
    BINDINGS = [
        *vim_keys("approvals", top=None, bottom=None),
        Binding("y", "screen.approve_selected", "Approve", id="approvals.approve"),
        Binding("n", "screen.reject_selected", "Reject", id="approvals.reject"),
    ]
    COLUMNS = COLUMNS

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pending: list[ProposalRecord] = []
        self._fleet = False

    @staticmethod
    def _cells(p: ProposalRecord) -> tuple:
        change = f"{p.from_provider or 'nothing'} -> {p.to_provider}" + (" (force)" if p.force else "")
        return (f"#{p.id}", f"{p.domain}/{p.key}", one_line(change), one_line(f"{p.requested_by} via {p.source}"),
                fmt.ago(p.created_at) + " ago", one_line(p.reason or "-"))

    @staticmethod
    def _cut(rows: dict[str, tuple], width: int, columns: tuple[tuple[str, str], ...] = COLUMNS) -> dict[str, tuple]:
        """The rows fitted to `width` cells: whole if they fit; else the change and who asked
        cut to their widths, and the reason to the room they leave (an ellipsis each). A NODE
        column (a fleet store's) comes first and is kept whole, as the component is."""
        def need(rows: dict[str, tuple], which: range) -> int:
            return sum(max(cell_len(columns[i][1]), *(cell_len(cells[i]) for cells in rows.values())) + 2
                       for i in which)

        if not rows or need(rows, range(len(columns))) <= width:
            return rows
        lead = len(columns) - len(COLUMNS)  # the node, if any
        cut = {key: (*cells[:lead + 2], fmt.clip(cells[lead + 2], CHANGE_WIDTH), fmt.clip(cells[lead + 3], BY_WIDTH),
                     *cells[lead + 4:]) for key, cells in rows.items()}
        room = max(WHY_WIDTH, width - need(cut, range(len(columns) - 1)) - 2)
        return {key: (*cells[:-1], fmt.clip(cells[-1], room)) for key, cells in cut.items()}

    def _show_nodes(self, nodes: bool) -> None:
        """Columns with or without NODE first: set again (rows drawn anew) when it changes."""
        if nodes == self._fleet:
            return
        self._fleet = nodes
        # PaneTable reads its columns from COLUMNS (a class constant of each pane); this one
        # pane's differ by store, so the instance carries its own.
        setattr(self, "COLUMNS", FLEET_COLUMNS if nodes else COLUMNS)  # noqa: B010
        self.clear(columns=True)
        self._rows = {}
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    def sync(self, pending: list[ProposalRecord], *, nodes: bool = False) -> None:
        """Show `pending`; `nodes`: a fleet store's, every node's, with a NODE column."""
        self._show_nodes(nodes)
        self._pending = pending
        rows = {str(p.id): ((one_line(p.node or "-"),) if nodes else ()) + self._cells(p)
                for p in pending if p.id is not None}
        self.sync_rows(self._cut(rows, self.scrollable_content_region.width, self.COLUMNS))

    def on_resize(self) -> None:
        """Zoomed (z) there may be room for every text whole: they are drawn again."""
        if self._pending:
            self.sync(self._pending, nodes=self._fleet)

    @property
    def selected_id(self) -> int | None:
        key = self.selected_key
        return int(key) if key else None
