"""Pending approvals: who asked, when, from -> to, why. Rows are keyed by proposal id."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from oneiric_core.store import ProposalRecord

from .. import format as fmt
from ..keys import vim_keys

COLUMNS = (("id", "#"), ("component", "COMPONENT"), ("change", "FROM -> TO"), ("by", "ASKED BY"),
           ("when", "WHEN"), ("why", "WHY"))


class ApprovalsTable(DataTable):
    BINDINGS = [
        *vim_keys("approvals", top=None, bottom=None),
        Binding("y", "screen.approve_selected", "Approve", id="approvals.approve"),
        Binding("n", "screen.reject_selected", "Reject", id="approvals.reject"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._rows: dict[int, tuple] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @staticmethod
    def _cells(p: ProposalRecord) -> tuple:
        change = f"{p.from_provider or 'nothing'} -> {p.to_provider}" + (" (force)" if p.force else "")
        return (f"#{p.id}", f"{p.domain}/{p.key}", change, f"{p.requested_by} via {p.source}",
                fmt.ago(p.created_at) + " ago", p.reason or "-")

    def sync(self, pending: list[ProposalRecord]) -> None:
        wanted = {p.id: p for p in pending if p.id is not None}
        for pid in [pid for pid in self._rows if pid not in wanted]:
            self.remove_row(str(pid))
            del self._rows[pid]
        for pid, proposal in wanted.items():
            cells = self._cells(proposal)
            old = self._rows.get(pid)
            if old is None:
                self.add_row(*cells, key=str(pid))
            elif old != cells:
                for (column, _), new, before in zip(COLUMNS, cells, old):
                    if new != before:
                        self.update_cell(str(pid), column, new)
            self._rows[pid] = cells

    @property
    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key and key.value else None
