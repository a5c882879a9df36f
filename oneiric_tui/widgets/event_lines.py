"""The swap log's lines: journal events drawn with the line API, only where they are seen.

Rich's RichLog renders every line it is given, at once, to wrapped strips; at 500 journal
events a second that rendering alone stalled the console for hundreds of milliseconds. This
widget keeps events (bounded) and draws a line only when it is on screen (`render_line`,
as Textual's own `Log` does), so a storm costs a few list operations per event.

Long lines fold: at the last space that fits, else at the width; continuation lines are
indented past the timestamp so the eye can follow an event. Folding is worked out on the
plain text with string searches, redone for every event only when the width changes.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from oneiric_core.events import Event

INDENT = 9  # continuation lines start under the text after "HH:MM:SS "
_serials = itertools.count()


def fold(plain: str, width: int, indent: int = INDENT) -> list[tuple[int, int]]:
    """(start, end) offsets of each screen line of `plain` folded to `width` cells.

    Assumes one cell per character, which holds for ASCII; callers send other text through
    Rich's wrapping instead."""
    width = max(width, indent + 8)
    rows: list[tuple[int, int]] = []
    start, room, length = 0, width, len(plain)
    while length - start > room:
        end = plain.rfind(" ", start + room // 2, start + room + 1)
        if end <= start:
            end = start + room
        rows.append((start, end))
        start = end
        while start < length and plain[start] == " ":
            start += 1
        room = width - indent
    rows.append((start, length))
    return rows


class _Entry:
    """One event as shown: its plain text and where it folds at `width`. The styled Text is
    built again only for lines being drawn: thousands of kept Texts (spans, styles) made the
    garbage collector's full passes long enough to delay key presses."""

    __slots__ = ("event", "plain", "rows", "width", "serial")

    def __init__(self, event: Event, plain: str) -> None:
        self.event = event
        self.plain = plain
        self.rows: list[Text] | list[tuple[int, int]] = []
        self.width = -1
        self.serial = next(_serials)


class EventLines(ScrollView, can_focus=False):
    """Bounded, scrollable, colour-and-symbol event lines; newest at the bottom."""

    DEFAULT_CSS = """
    EventLines { background: $surface; color: $text; overflow-y: scroll; overflow-x: hidden; }
    """

    def __init__(self, render_event: Callable[[Event], Text], max_events: int, *,
                 plain_event: Callable[[Event], str] | None = None, **kwargs) -> None:
        """`render_event` styles a line when it is drawn; `plain_event` (the same characters,
        no styles; cheaper) is what is kept for every event."""
        super().__init__(**kwargs)
        self._render_event = render_event
        self._plain_event = plain_event or (lambda event: render_event(event).plain)
        self.max_events = max_events
        self._entries: deque[_Entry] = deque()
        self._index: list[tuple[_Entry, int]] = []  # screen row + _base -> (entry, row within it)
        self._base = 0  # leading index rows of events already dropped (removed in bulk, not one by one)
        self._index_width = -1
        self._index_dirty = True
        self._strips: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)

    # -- content ---------------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        return [entry.event for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, events: Iterable[Event]) -> None:
        """Append events; the oldest go beyond `max_events`. Follows the end if it was there.

        The screen-row index grows by the new events' rows and loses the dropped ones' from
        its front: a batch costs its own events, not the `max_events` kept."""
        following = self._following()
        dropped_rows = 0
        width = self._text_width()
        incremental = not self._index_dirty and width == self._index_width
        for event in events:
            entry = _Entry(event, self._plain_event(event))
            self._entries.append(entry)
            if incremental:
                self._fold(entry, width)
                self._index.extend((entry, row) for row in range(len(entry.rows)))
            if len(self._entries) > self.max_events:
                old = self._entries.popleft()
                if old.width == width:
                    dropped_rows += len(old.rows)
                if incremental:
                    self._base += len(old.rows)
        if incremental:
            if self._base > 1024 and self._base * 2 > len(self._index):
                del self._index[:self._base]
                self._base = 0
        else:
            self._index_dirty = True
        self._update_size()
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif dropped_rows:
            # Keep the operator on the lines they were reading while old ones fall off.
            self.scroll_to(y=max(0, self.scroll_y - dropped_rows), animate=False, immediate=True)
        self.refresh()

    def clear(self) -> None:
        self._entries.clear()
        self._index, self._base, self._index_dirty = [], 0, True
        self._strips.clear()
        self._update_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def _following(self) -> bool:
        return self.is_vertical_scroll_end or self.max_scroll_y == 0

    # -- folding ---------------------------------------------------------------------------
    def _text_width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def _fold(self, entry: _Entry, width: int) -> None:
        if entry.width == width:
            return
        plain = entry.plain
        if plain.isascii():
            entry.rows = fold(plain, width)
        else:
            text = self._render_event(entry.event)
            entry.rows = list(text.wrap(self.app.console, width, overflow="fold"))
        entry.width = width

    def _rebuild_index(self) -> None:
        width = self._text_width()
        if not self._index_dirty and width == self._index_width:
            return
        index: list[tuple[_Entry, int]] = []
        for entry in self._entries:
            self._fold(entry, width)
            index.extend((entry, row) for row in range(len(entry.rows)))
        self._index, self._base, self._index_width, self._index_dirty = index, 0, width, False

    @property
    def screen_rows(self) -> int:
        """How many screen lines the kept events fold into at the current width."""
        return len(self._index) - self._base

    def _update_size(self) -> None:
        self._rebuild_index()
        self.virtual_size = Size(self._index_width, self.screen_rows)

    def on_resize(self) -> None:
        following = self._following()
        self._update_size()
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    # -- drawing ---------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        self._rebuild_index()
        width = self.scrollable_content_region.width
        row_no = self.scroll_offset.y + y
        style = self.rich_style
        if row_no >= self.screen_rows:
            return Strip.blank(width, style)
        entry, row = self._index[self._base + row_no]
        key = (entry.serial, row, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strip(entry, row, width)
            self._strips[key] = strip
        return strip.apply_style(style).apply_offsets(0, row_no)

    def _strip(self, entry: _Entry, row: int, width: int) -> Strip:
        part = entry.rows[row]
        if isinstance(part, Text):
            line = part
        else:
            start, end = part
            line = self._render_event(entry.event)[start:end]
            if row:
                line = Text(" " * INDENT) + line
        segments = list(line.render(self.app.console))
        return Strip(segments, cell_len(line.plain)).crop_extend(0, width, None)

    def text_lines(self) -> list[str]:
        """Every screen line as plain text (what a reader of the log sees, scrolled or not)."""
        self._rebuild_index()
        out = []
        for entry, row in self._index[self._base:]:
            part = entry.rows[row]
            if isinstance(part, Text):
                out.append(part.plain)
            else:
                start, end = part
                out.append((" " * INDENT if row else "") + entry.plain[start:end])
        return out


__all__ = ["EventLines", "INDENT", "fold"]
