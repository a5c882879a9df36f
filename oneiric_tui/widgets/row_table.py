"""A keyed table kept in order by bisect and drawn with the line API: a change costs the
rows it touches, whatever the number of rows.

Textual's DataTable rebuilds its ordered row list and every row's y offset after any row
is added, removed or sorted, and sorting is the only way to put a new row in its place: with
12,500 serving components that was most of the console's loop while the host activated them
(docs/architecture.md §11: 50,000 components, no stall over 100 ms). Here the rows are two parallel
lists in display order (`bisect` finds a row's place), only the rows on screen are ever
rendered (`render_line`, as Textual's own `Log` does), and an update redraws the one line
it changes. Column widths only grow, from the cells as they are given or drawn.

`/` narrows the rows shown (`apply_filter`, pane_filter.row_matches over a row's cells): the
rows kept are the display lists, the others stay in `_sort_of` and come back when the words
are cleared; a row whose cells change is checked again. Without a filter this costs nothing.

A subclass gives `COLUMNS` and calls `upsert` / `remove`; it may override `row_cells` to
build a row's cells only when the row is drawn (the health table does: most rows are never
on screen). A str cell is outside text and is drawn as plain text (oneiric_core.text).
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from oneiric_core.text import one_line, plain

from ..pane_filter import cell_text, filter_subtitle, normalized, row_matches

PAD = 1  # blank cells on each side of a cell, as DataTable draws them


def _text(value: Any) -> Text:
    return plain(value) if isinstance(value, str) else value


def _width(value: Any) -> int:
    return cell_len(one_line(value)) if isinstance(value, str) else value.cell_len


class RowTable(ScrollView, can_focus=True):
    """Rows keyed by any hashable value, in the order of a per-row sort key (unique)."""

    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(column key, header) pairs."""
    MIN_WIDTHS: ClassVar[dict[str, int]] = {}
    """Widths a column starts with (beyond its header's), for values known to reach them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"row-table--header", "row-table--cursor"}
    DEFAULT_CSS = """
    RowTable { background: $surface; color: $foreground; overflow-x: auto; overflow-y: auto; }
    RowTable:focus { background-tint: $foreground 5%; }
    RowTable > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
    RowTable > .row-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    RowTable:focus > .row-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("down", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys: list[Hashable] = []  # the rows shown (the filter's), in display order
        self._order: list[Any] = []  # the sort key of each row, parallel to _keys
        self._sort_of: dict[Hashable, Any] = {}  # every row, shown or filtered out
        self.filter_text = ""
        self._match: Callable[[Hashable], bool] | None = None
        self._given: dict[Hashable, tuple | None] = {}  # cells given by upsert (None: built when drawn)
        self._widths = [max(len(label), self.MIN_WIDTHS.get(key, 0)) for key, label in self.COLUMNS]
        self._column_index = {key: i for i, (key, _) in enumerate(self.COLUMNS)}
        self._cursor = 0
        self._cursor_key: Hashable | None = None
        self._thumb_pending = False  # _resize: the scrollbar's thumb is to move
        self._pinned = False  # the operator moved the cursor: it stays on its row as rows come and go

    # -- rows ------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def ordered_keys(self) -> list[Hashable]:
        return list(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._sort_of

    def _shown(self, key: Hashable) -> bool:
        return self.index_of(key) is not None

    def index_of(self, key: Hashable) -> int | None:
        order = self._sort_of.get(key)
        if order is None:
            return None
        i = bisect_left(self._order, order)
        return i if i < len(self._keys) and self._keys[i] == key else None

    def row_cells(self, key: Hashable) -> tuple:
        """The cells of row `key` as drawn now (a subclass may build them here)."""
        cells = self._given.get(key)
        return cells if cells is not None else ()

    def cell(self, key: Hashable, column: str) -> Any:
        return self.row_cells(key)[self._column_index[column]]

    def upsert(self, key: Hashable, order: Any, cells: tuple | None = None) -> bool:
        """Add row `key` at its place by `order`, or update it (moving it if `order`
        changed). Returns whether the row is new. Redraws only what is on screen."""
        old_order = self._sort_of.get(key)
        new = old_order is None
        if not new and old_order != order:
            self.remove_row(key)
            new = True
        if new:
            self._sort_of[key] = order
            self._given[key] = cells
            if self._match is None or self._match(key):
                self._insert(key, order)
        else:
            self._given[key] = cells
            self.refresh_row(key)
        if cells is not None:
            self.fit(cells)
        return new

    def remove_row(self, key: Hashable) -> None:
        if key not in self._sort_of:
            return
        i = self.index_of(key)
        del self._sort_of[key], self._given[key]
        if i is not None:
            del self._keys[i], self._order[i]
            self._shifted(i, -1)

    def _insert(self, key: Hashable, order: Any) -> None:
        i = bisect_left(self._order, order)
        self._keys.insert(i, key)
        self._order.insert(i, order)
        self._shifted(i, +1)

    def _hide(self, key: Hashable) -> None:
        i = self.index_of(key)
        if i is not None:
            del self._keys[i], self._order[i]
            self._shifted(i, -1)

    # -- `/`: the rows whose text has every word ---------------------------------------------
    def apply_filter(self, text: str) -> None:
        """Show only the rows whose cells (as drawn) hold every word of `text`; "" shows all.
        The cursor stays on its row when that row is kept, else goes to the first."""
        query = self.filter_text = normalized(text)

        def match(key: Hashable) -> bool:
            return row_matches(query, map(cell_text, self.row_cells(key)))

        self._match = match if query else None
        keep = self._cursor_key
        rows = sorted(self._sort_of.items(), key=lambda row: row[1])
        if self._match is not None:
            rows = [row for row in rows if self._match(row[0])]
        self._keys = [key for key, _ in rows]
        self._order = [order for _, order in rows]
        kept = self.index_of(keep) if keep is not None else None
        self._cursor = kept if kept is not None else 0
        self._resize()
        self.scroll_to(y=0, animate=False, immediate=True)
        if self._keys:
            self.move_cursor(self._cursor)
        self.refresh()
        self._cursor_moved()
        self.border_subtitle = filter_subtitle(query)

    def widen(self, widths: Iterable[int]) -> None:
        """Grow the columns to at least `widths` (a subclass that builds its cells only when
        they are drawn knows how wide they are beforehand, from their plain text)."""
        grew = False
        for i, width in enumerate(widths):
            if i < len(self._widths) and width > self._widths[i]:
                self._widths[i], grew = width, True
        if grew:
            self._resize()
            self.refresh()

    def fit(self, cells: Iterable[Any]) -> None:
        """Widen the columns these cells do not fit in (columns never narrow)."""
        grew = False
        for i, value in enumerate(cells):
            width = _width(value)
            if width > self._widths[i]:
                self._widths[i], grew = width, True
        if grew:
            self._resize()
            self.refresh()

    def _shifted(self, index: int, delta: int) -> None:
        """Rows from `index` on moved by `delta`: keep the cursor on its row and, when the
        change is above the rows on screen, keep those rows where they are."""
        if self._pinned and self._shown(self._cursor_key):
            if index <= self._cursor and delta > 0 or index < self._cursor and delta < 0:
                self._cursor += delta
        self._cursor = max(0, min(self._cursor, len(self._keys) - 1))
        self._resize()
        top = int(self.scroll_y)
        if top and index < top:
            self.scroll_to(y=max(0, top + delta), animate=False, immediate=True)
        elif index <= top + self.size.height:  # the box's height bounds the lines on screen, and costs less
            self.refresh()  # the rows below it on screen moved
        if not self._shown(self._cursor_key):
            self._cursor_moved()

    def _resize(self) -> None:
        width = sum(w + 2 * PAD for w in self._widths)
        size = Size(width, len(self._keys) + 1)  # +1: the header line
        old = self.virtual_size
        if size == old:
            return
        shown = self.container_size.height
        if size.width == old.width and 0 < shown < min(size.height, old.height):
            # Rows came or went below a table already taller than its box, which is as tall
            # as the screen lets it be (max-height, 1fr) before and after: its box and its
            # scrollbars stay as they are, only the scrollbar's thumb moves. Setting
            # virtual_size would lay the whole screen out and paint every widget again, once
            # a frame while thousands of rows arrive one by one (the health table while the
            # host activates 12,500 keys: 10-40 ms a frame, most of the console's loop stalls).
            # The thumb once per turn of the loop, not once a row.
            self.set_reactive(ScrollView.virtual_size, size)
            if not self._thumb_pending:
                self._thumb_pending = True
                self.call_later(self._move_thumb)
            return
        self.virtual_size = size

    def _move_thumb(self) -> None:
        self._thumb_pending = False
        self._scroll_update(self.virtual_size)  # Textual's own step for a new virtual size (pinned ==8.2.8)

    def on_mount(self) -> None:
        self._resize()

    # -- drawing ---------------------------------------------------------------------------
    @property
    def _lines(self) -> int:
        """Lines on screen, the header's included (scrollbars take theirs)."""
        return self.scrollable_content_region.height

    def _screen_y(self, index: int) -> int:
        return index - int(self.scroll_y) + 1

    def refresh_row(self, key: Hashable) -> None:
        """Redraw row `key` if it is on screen (a row off screen is drawn when it comes into view).
        While filtered, its new cells decide again whether it is shown."""
        i = self.index_of(key)
        if self._match is not None and key in self._sort_of and self._match(key) != (i is not None):
            if i is None:
                self._insert(key, self._sort_of[key])
            else:
                self._hide(key)
            return
        if i is None:
            return
        y = self._screen_y(i)
        if 1 <= y < self._lines:
            self.refresh(Region(0, y, self.size.width, 1))

    def visible_keys(self) -> list[Hashable]:
        top = int(self.scroll_y)
        return self._keys[top:top + max(0, self._lines - 1)]

    def _visible(self, values: Iterable[Any], left: int, right: int) -> tuple[Text, int]:
        """The cells of a line that reach into columns [left, right) of the table, and the
        column where the first of them starts: a table wider than its pane (the fleet matrix:
        a column per node) draws only what is in view."""
        line = Text(no_wrap=True, end="")
        x = start = 0
        for value, width in zip(values, self._widths, strict=False):
            end = x + width + 2 * PAD
            if end <= left:
                x = start = end
                continue
            if x >= right:
                break
            text = _text(value)
            line.append(" " * PAD)
            line.append_text(text)
            line.append(" " * (width - text.cell_len + PAD))
            x = end
        return line, start

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        left = int(self.scroll_x)
        if y == 0:
            text, start = self._visible((label for _, label in self.COLUMNS), left, left + width)
            style = base + self.get_component_rich_style("row-table--header")
        else:
            index = int(self.scroll_y) + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, base)
            key = self._keys[index]
            cells = self.row_cells(key)
            if any(_width(v) > w for v, w in zip(cells, self._widths, strict=False)):
                self.call_after_refresh(self.fit, cells)  # drawn cut this once, then in full
            text, start = self._visible(cells, left, left + width)
            style = base
            if index == self._cursor:
                style = base + self.get_component_rich_style("row-table--cursor")
        segments = list(text.render(self.app.console))
        strip = Strip(segments, text.cell_len).crop_extend(left - start, left - start + width, None)
        return strip.apply_style(style) if style else strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- the cursor ------------------------------------------------------------------------
    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> Hashable | None:
        return self._keys[self._cursor] if self._keys else None

    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        self._pinned = True
        before = self._cursor
        self._cursor = max(0, min(row, len(self._keys) - 1))
        height = max(1, self._lines - 1)  # rows under the header
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, immediate=True)
        for index in (before, self._cursor):
            y = self._screen_y(index)
            if 1 <= y < self._lines:
                self.refresh(Region(0, y, self.size.width, 1))
        self._cursor_moved()

    def _cursor_moved(self) -> None:
        key = self.cursor_key
        if key != self._cursor_key:
            self._cursor_key = key
            self.cursor_changed(key)

    def cursor_changed(self, key: Hashable | None) -> None:
        """The highlighted row is now `key` (a subclass tells the screen)."""

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + max(1, self._lines - 2))

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - max(1, self._lines - 2))

    def action_scroll_top(self) -> None:
        self.move_cursor(0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(len(self._keys) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(int(self.scroll_y) + offset.y - 1)

    def text_lines(self) -> list[str]:
        """Every line as plain text, header first (what a reader sees, scrolled or not)."""
        lines = [(label for _, label in self.COLUMNS), *(self.row_cells(k) for k in self._keys)]
        return [self._visible(values, 0, sys.maxsize)[0].plain.rstrip() for values in lines]


__all__ = ["PAD", "RowTable"]
