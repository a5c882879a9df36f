"""Remote sync: one row per manifest source, updated cell by cell.

It shows what `oneiric remote-status` shows, condensed so a healthy source fits the left
column (40 cells at 120 columns) without a scrollbar: the source's state (symbol and word), the age of its
last good sync, how many entries it registered (and rejected), then its problem: the
circuit breaker when it is not closed and the last error, cut with an ellipsis to the room
left (`z` gives it the whole width; `oneiric remote-status` has it whole). Rows are keyed
by source name and updated in place. Source names and errors are outside text: PaneTable
shows str cells as plain text.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding

from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from ..pane_filter import cell_text
from .pane_table import PaneTable

COLUMNS = (("source", "SOURCE"), ("state", "STATE"), ("synced", "GOOD"), ("entries", "ENTRIES"),
           ("error", "ERROR"))
PAD = 1  # DataTable's cell padding, each side

# symbol, word, style per source state (remote/status.py) and breaker state
SOURCE_STATE = {
    "ok": ("+", "OK", "green"),
    "stale": ("~", "STALE", "yellow"),
    "failing": ("x", "FAILING", "red bold"),
    "pending": ("?", "PENDING", "dim"),
}
CIRCUIT = {
    "closed": ("", "closed", ""),
    "half-open": ("~", "half-open", "yellow"),
    "open": ("x", "OPEN", "red bold"),
}


def source_cells(status: dict[str, Any]) -> tuple:
    """The row of one source, its last cell (the circuit when not closed, then the last
    error) whole: `RemoteTable.sync` cuts it to the room the pane has."""
    sym, word, style = SOURCE_STATE.get(status.get("state", ""), ("?", str(status.get("state", "?")).upper(), ""))
    breaker = status.get("breaker") or {}
    bsym, bword, bstyle = CIRCUIT.get(breaker.get("state", "closed"), ("?", str(breaker.get("state")), ""))
    problem = Text()
    if breaker.get("state", "closed") != "closed":  # closed is the normal case: not worth a column
        circuit = f"{bsym} circuit {bword}".strip()
        if breaker.get("state") == "open" and breaker.get("retry_at"):
            circuit += f" (retry in {_until(breaker['retry_at'])})"
        problem.append(one_line(circuit), style=bstyle)
        if status.get("last_error"):
            problem.append(": ")
    if status.get("last_error") or not problem:
        problem.append(one_line(status.get("last_error") or "-"))
    entries = sum((status.get("entries") or {}).values())
    rejected = len(status.get("rejected") or [])
    synced = "never" if status.get("age_s") is None else fmt.ago(status.get("last_success_at"))
    return (
        str(status.get("name", "?")),
        Text(one_line(f"{sym} {word}"), style=style),
        synced,
        f"{entries}" + (f" ({rejected} rejected)" if rejected else ""),
        problem,
    )


def fitted(rows: dict[str, tuple], width: int) -> dict[str, tuple]:
    """`rows` with their last cell cut (an ellipsis) to what `width` cells leave it once the
    other columns are as wide as their header or widest cell, and never below its header's
    width: a healthy source fits 40 cells, a failing one's error reads whole once zoomed."""
    used = sum(max(cell_len(label), *(cell_len(cell_text(cells[i])) for cells in rows.values())) + 2 * PAD
               for i, (_, label) in enumerate(COLUMNS[:-1])) if rows else 0
    room = max(cell_len(COLUMNS[-1][1]), width - used - 2 * PAD)
    out = {}
    for key, cells in rows.items():
        last = cells[-1]
        if last.cell_len > room:
            last = last.copy()
            last.truncate(room, overflow="ellipsis")
        out[key] = (*cells[:-1], last)
    return out


def _until(ts: float) -> str:
    import time

    seconds = max(0, int(ts - time.time()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


class RemoteTable(PaneTable):
    BINDINGS = [
        Binding("S", "screen.sync_remote", "Sync now", id="remote.sync"),
        *vim_keys("remote", top="scroll_top", bottom="scroll_bottom"),
    ]
    COLUMNS = COLUMNS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._statuses: list[dict[str, Any]] = []

    def sync(self, statuses: list[dict[str, Any]]) -> None:
        self._statuses = statuses
        rows = {str(s.get("name")): source_cells(s) for s in statuses}
        width = self.scrollable_content_region.width
        self.sync_rows(fitted(rows, width) if width else rows)

    def on_resize(self) -> None:
        """The room for the last error changes with the pane (z gives it the whole width)."""
        if self._statuses:
            self.sync(self._statuses)

    @property
    def selected_source(self) -> str | None:
        return self.selected_key
