"""A DataTable pane whose rows are keyed and updated cell by cell, never cleared and refilled.

The health, approvals and remote panes all show "one row per thing, kept current": this is
that behaviour once. `sync_rows` adds new rows, removes gone ones and rewrites only the cells
whose value changed, so a refresh that changes nothing redraws nothing.

`/` narrows the rows shown (`apply_filter`, pane_filter.row_matches over a row's cells):
`_rows` keeps every row, and while filtered the table is refilled from it when rows change
(these panes hold a few rows: pending proposals, remote sources).

A str cell is outside text (a provider, a reason, an error): DataTable would read it as
markup, so `add_row` and `update_cell` make it a plain one-line Text (oneiric_core.text).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from oneiric_core.text import plain

from ..pane_filter import cell_text, filter_subtitle, normalized, row_matches


def _cell(value: Any) -> Any:
    return plain(value) if isinstance(value, str) else value


class PaneTable(DataTable):
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(column key, header) pairs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._rows: dict[str, tuple] = {}  # every row, shown or filtered out
        self.filter_text = ""

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    def add_row(self, *cells: Any, **kwargs: Any) -> Any:
        return super().add_row(*map(_cell, cells), **kwargs)

    def update_cell(self, row_key: Any, column_key: Any, value: Any, **kwargs: Any) -> None:
        super().update_cell(row_key, column_key, _cell(value), **kwargs)

    def action_scroll_top(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def sync_rows(self, wanted: dict[str, tuple], *, complete: bool = True) -> bool:
        """Make the rows match `wanted` (row key -> cells). With `complete=False`, `wanted` is
        only the rows that changed and the others stay. Returns whether rows were added."""
        if self.filter_text:
            before = dict(self._rows)
            if complete:
                self._rows = {}
            self._rows.update(wanted)
            if self._rows != before:
                self._refill()
            return any(key not in before for key in wanted)
        if complete:
            for key in [k for k in self._rows if k not in wanted]:
                self.remove_row(key)
                del self._rows[key]
        added = False
        for key, cells in wanted.items():
            old = self._rows.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                added = True
            elif old != cells:
                for (column, _), new, before in zip(self.COLUMNS, cells, old, strict=False):
                    if new != before:
                        self.update_cell(key, column, new, update_width=True)
            self._rows[key] = cells
        return added

    def drop_row(self, key: str) -> None:
        if key in self._rows:
            del self._rows[key]
            if self.filter_text:
                self._refill()
            else:
                self.remove_row(key)

    def apply_filter(self, text: str) -> None:
        """Show only the rows whose cells hold every word of `text`; "" shows them all."""
        self.filter_text = normalized(text)
        self._refill()
        self.border_subtitle = filter_subtitle(self.filter_text)

    def _refill(self) -> None:
        """The rows the filter keeps, in their order, the cursor kept on its row if shown."""
        keep = self.selected_key
        self.clear()
        for key, cells in self._rows.items():
            if row_matches(self.filter_text, map(cell_text, cells)):
                self.add_row(*cells, key=key)
        if keep is not None and self.row_count:
            try:
                self.move_cursor(row=self.get_row_index(keep))
            except RowDoesNotExist:  # filtered out: the cursor stays on the first row
                pass

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(row_key.value) if row_key and row_key.value else None
