"""Pending approvals: who asked, when, from -> to, why. Rows are keyed by proposal id."""

from __future__ import annotations

from textual.binding import Binding

from oneiric_core.store import ProposalRecord

from .. import format as fmt
from ..keys import vim_keys
from .pane_table import PaneTable

COLUMNS = (("id", "#"), ("component", "COMPONENT"), ("change", "FROM -> TO"), ("by", "ASKED BY"),
           ("when", "WHEN"), ("why", "WHY"))


class ApprovalsTable(PaneTable):
    BINDINGS = [
        *vim_keys("approvals", top=None, bottom=None),
        Binding("y", "screen.approve_selected", "Approve", id="approvals.approve"),
        Binding("n", "screen.reject_selected", "Reject", id="approvals.reject"),
    ]
    COLUMNS = COLUMNS

    @staticmethod
    def _cells(p: ProposalRecord) -> tuple:
        change = f"{p.from_provider or 'nothing'} -> {p.to_provider}" + (" (force)" if p.force else "")
        return (f"#{p.id}", f"{p.domain}/{p.key}", change, f"{p.requested_by} via {p.source}",
                fmt.ago(p.created_at) + " ago", p.reason or "-")

    def sync(self, pending: list[ProposalRecord]) -> None:
        self.sync_rows({str(p.id): self._cells(p) for p in pending if p.id is not None})

    @property
    def selected_id(self) -> int | None:
        key = self.selected_key
        return int(key) if key else None
