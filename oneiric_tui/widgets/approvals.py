"""Pending approvals: who asked, when, from -> to, why. Rows are keyed by proposal id.

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

    @staticmethod
    def _cells(p: ProposalRecord) -> tuple:
        change = f"{p.from_provider or 'nothing'} -> {p.to_provider}" + (" (force)" if p.force else "")
        return (f"#{p.id}", f"{p.domain}/{p.key}", one_line(change), one_line(f"{p.requested_by} via {p.source}"),
                fmt.ago(p.created_at) + " ago", one_line(p.reason or "-"))

    @staticmethod
    def _cut(rows: dict[str, tuple], width: int) -> dict[str, tuple]:
        """The rows fitted to `width` cells: whole if they fit; else the change and who asked
        cut to their widths, and the reason to the room they leave (an ellipsis each)."""
        def need(rows: dict[str, tuple], columns: range) -> int:
            return sum(max(cell_len(COLUMNS[i][1]), *(cell_len(cells[i]) for cells in rows.values())) + 2
                       for i in columns)

        if not rows or need(rows, range(len(COLUMNS))) <= width:
            return rows
        cut = {key: (n, ref, fmt.clip(change, CHANGE_WIDTH), fmt.clip(by, BY_WIDTH), when, why)
               for key, (n, ref, change, by, when, why) in rows.items()}
        room = max(WHY_WIDTH, width - need(cut, range(len(COLUMNS) - 1)) - 2)
        return {key: (*cells[:-1], fmt.clip(cells[-1], room)) for key, cells in cut.items()}

    def sync(self, pending: list[ProposalRecord]) -> None:
        self._pending = pending
        rows = {str(p.id): self._cells(p) for p in pending if p.id is not None}
        self.sync_rows(self._cut(rows, self.scrollable_content_region.width))

    def on_resize(self) -> None:
        """Zoomed (z) there may be room for every text whole: they are drawn again."""
        if self._pending:
            self.sync(self._pending)

    @property
    def selected_id(self) -> int | None:
        key = self.selected_key
        return int(key) if key else None
