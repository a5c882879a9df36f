"""Remote sync: one row per manifest source, updated cell by cell.

It shows what `oneiric remote-status` shows, condensed to fit the left column (40 cells
at 120 columns) without a scrollbar: the source's state (symbol and word, and the circuit
breaker only when it is not closed), the age of its last good sync, how many entries it
registered (and rejected) and the last error, cut with an ellipsis (`oneiric remote-status`
has it whole). Rows are keyed by source name and updated in place. Source names and errors
are outside text: PaneTable shows str cells as plain text.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from oneiric_core.text import one_line

from .. import format as fmt
from ..keys import vim_keys
from .pane_table import PaneTable

COLUMNS = (("source", "SOURCE"), ("state", "STATE"), ("synced", "GOOD"), ("entries", "ENTRIES"),
           ("error", "ERROR"))
ERROR_WIDTH = 24

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
    sym, word, style = SOURCE_STATE.get(status.get("state", ""), ("?", str(status.get("state", "?")).upper(), ""))
    breaker = status.get("breaker") or {}
    bsym, bword, bstyle = CIRCUIT.get(breaker.get("state", "closed"), ("?", str(breaker.get("state")), ""))
    state = Text(one_line(f"{sym} {word}"), style=style)
    if breaker.get("state", "closed") != "closed":  # closed is the normal case: not worth a column
        circuit = f"{bsym} circuit {bword}".strip()
        if breaker.get("state") == "open" and breaker.get("retry_at"):
            circuit += f" (retry in {_until(breaker['retry_at'])})"
        state.append(", ")
        state.append(one_line(circuit), style=bstyle)
    entries = sum((status.get("entries") or {}).values())
    rejected = len(status.get("rejected") or [])
    synced = "never" if status.get("age_s") is None else fmt.ago(status.get("last_success_at"))
    return (
        str(status.get("name", "?")),
        state,
        synced,
        f"{entries}" + (f" ({rejected} rejected)" if rejected else ""),
        fmt.clip(one_line(status.get("last_error") or "-"), ERROR_WIDTH),
    )


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

    def sync(self, statuses: list[dict[str, Any]]) -> None:
        self.sync_rows({str(s.get("name")): source_cells(s) for s in statuses})

    @property
    def selected_source(self) -> str | None:
        return self.selected_key
