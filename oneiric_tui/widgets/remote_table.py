"""Remote sync: one row per manifest source, updated cell by cell.

It shows what `oneiric remote-status` shows, condensed: the source's state (symbol and
word), the age of its last good sync, the circuit breaker, how many entries it registered
(and rejected) and the last error. Rows are keyed by source name and updated in place.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from .. import format as fmt
from ..keys import vim_keys

COLUMNS = (("source", "SOURCE"), ("state", "STATE"), ("synced", "GOOD"), ("circuit", "CIRCUIT"),
           ("entries", "ENTRIES"), ("error", "LAST ERROR"))

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
    circuit = f"{bsym} {bword}".strip()
    if breaker.get("state") == "open" and breaker.get("retry_at"):
        circuit += f" (retry in {_until(breaker['retry_at'])})"
    entries = sum((status.get("entries") or {}).values())
    rejected = len(status.get("rejected") or [])
    synced = "never" if status.get("age_s") is None else fmt.ago(status.get("last_success_at"))
    return (
        str(status.get("name", "?")),
        Text(f"{sym} {word}", style=style),
        synced,
        Text(circuit, style=bstyle),
        f"{entries}" + (f" ({rejected} rejected)" if rejected else ""),
        status.get("last_error") or "-",
    )


def _until(ts: float) -> str:
    import time

    seconds = max(0, int(ts - time.time()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


class RemoteTable(DataTable):
    BINDINGS = [
        Binding("S", "screen.sync_remote", "Sync now", id="remote.sync"),
        *vim_keys("remote", top="scroll_top", bottom="scroll_bottom"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._rows: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def action_scroll_top(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def sync(self, statuses: list[dict[str, Any]]) -> None:
        wanted = {str(s.get("name")): s for s in statuses}
        for name in [n for n in self._rows if n not in wanted]:
            self.remove_row(name)
            del self._rows[name]
        for name, status in wanted.items():
            cells = source_cells(status)
            old = self._rows.get(name)
            if old is None:
                self.add_row(*cells, key=name)
            elif old != cells:
                for (column, _), new, before in zip(COLUMNS, cells, old):
                    if new != before:
                        self.update_cell(name, column, new, update_width=True)
            self._rows[name] = cells

    @property
    def selected_source(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(key.value) if key and key.value else None
