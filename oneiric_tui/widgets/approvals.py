"""Pending approvals: who asked, when, from -> to, why. Rows are keyed by proposal id.

Long texts (a provider's name, who asked, the reason) are cut with an ellipsis at fixed
widths, so a row fits the pane (80 cells at 120 columns) and the columns stay aligned;
`oneiric approvals` and the approval dialog show them whole."""

from __future__ import annotations

from textual.binding import Binding

from oneiric_core.store import ProposalRecord
from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from .pane_table import PaneTable

COLUMNS = (("id", "#"), ("component", "COMPONENT"), ("change", "FROM -> TO"), ("by", "ASKED BY"),
           ("when", "WHEN"), ("why", "WHY"))
# The widest each cut column may be (the component is our own domain/key, kept whole).
CHANGE_WIDTH, BY_WIDTH, WHY_WIDTH = 18, 12, 15


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
        return (f"#{p.id}", f"{p.domain}/{p.key}", fmt.clip(one_line(change), CHANGE_WIDTH),
                fmt.clip(one_line(f"{p.requested_by} via {p.source}"), BY_WIDTH),
                fmt.ago(p.created_at) + " ago", fmt.clip(one_line(p.reason or "-"), WHY_WIDTH))

    def sync(self, pending: list[ProposalRecord]) -> None:
        self.sync_rows({str(p.id): self._cells(p) for p in pending if p.id is not None})

    @property
    def selected_id(self) -> int | None:
        key = self.selected_key
        return int(key) if key else None
