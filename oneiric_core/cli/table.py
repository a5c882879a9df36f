"""The CLI's tables: as wide as their rows when there is room, wrapped between words when not.

Rich squeezes a table that is wider than the terminal by cutting its columns, so on an
80-column terminal `oneiric status` showed "inactiv" and "unknow" and lost its NOTES column
altogether. `FitTable` decides the widths itself before Rich lays the table out: every column
starts at its widest cell; while the table is too wide, the column with the most room to
give (its width beyond its longest word, the last column first) gives one more cell, so cells
wrap between words and no word is cut. The first column (what the row is about) never wraps.
When even the longest words do not fit, the last column (free text) folds its long words
(paths); only past that does Rich's own cropping take over.

Cells are data (names, notes, reasons, provider messages): `add_row` makes each str cell a
plain one-line Text (oneiric_core.text), so `[link=...]` in a note is those characters, not a
hyperlink, and an ESC shows as `\\x1b`. One line, because a newline in a note would split its
row and a pipe reader expects one row per line; `\\n` shows it instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from ..text import plain

LAST_MIN = 12  # the narrowest the last column gets when it must fold words


def table(*columns: str) -> FitTable:
    # One space after each cell and the box's one-space divider: two columns between cells.
    out = FitTable(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for col in columns:
        out.add_column(col, overflow="fold")
    return out


class FitTable(Table):
    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        """A row of cells; a str cell is outside text, shown exactly (never markup)."""
        super().add_row(*(plain(cell) if isinstance(cell, str) else cell for cell in renderables), **kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self._fit(console, options.max_width)
        yield from super().__rich_console__(console, options)

    def _fit(self, console: Console, width: int) -> None:
        columns = self.columns
        if not columns:
            return
        natural = [max(_widths(column.header, column.cells, console)) for column in columns]
        shortest = [max(_longest_words(column.header, column.cells, console)) for column in columns]
        shortest[0] = natural[0]  # the first column never wraps
        # What the table adds around the cells (padding between columns), from Rich itself.
        for column, wide in zip(columns, natural, strict=True):
            column.width, column.no_wrap = wide, True
        extra = self.__rich_measure__(console, console.options.update_width(10**6)).maximum - sum(natural)
        room = width - extra
        widths = list(natural)
        order = list(reversed(range(len(columns))))  # the last column gives first on a tie
        while sum(widths) > room:
            index = max(order, key=lambda i: widths[i] - shortest[i])
            if widths[index] <= shortest[index]:
                break
            widths[index] -= 1
        # Still too wide: the last column (free text: notes, reasons, messages) folds its long
        # words (paths) down to LAST_MIN; only past that does Rich crop.
        last = len(columns) - 1
        if last > 0 and sum(widths) > room:
            widths[last] = max(LAST_MIN, widths[last] - (sum(widths) - room))
        for index, (column, fitted) in enumerate(zip(columns, widths, strict=True)):
            column.width = fitted
            column.no_wrap = index == 0 or fitted >= natural[index]


def _plain(cell: Any, console: Console) -> str:
    """A cell's text as the table shows it (a str header is markup, as Rich reads it)."""
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return console.render_str(cell).plain
    return str(cell)


def _widths(header: Any, cells: Iterable[Any], console: Console) -> list[int]:
    return [max((cell_len(line) for line in _plain(cell, console).splitlines() or [""]), default=0)
            for cell in (header, *cells)]


def _longest_words(header: Any, cells: Iterable[Any], console: Console) -> list[int]:
    return [max((cell_len(word) for word in _plain(cell, console).split()), default=0)
            for cell in (header, *cells)]
