"""The full journal's lines: every event, columns as wide as what they hold, a cursor line.

`EventLines` (the swap log's lines) with three more things an operator reading the journal
needs: a cursor (the line `y` copies and `:log at 14:02` moves to), lines that fold or not
(`w`: folded, a long provider error reads whole; not folded, one event per row), and columns
sized to their content: the kind, who and which component are padded to the longest one kept
(up to a cap), so `signature-verification-failed` does not push its line out of step.
When a longer value arrives the columns widen and the kept lines are laid out again; that is
rare (widths only grow, to the cap), so a storm still costs a list append per event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.strip import Strip

from oneiric_core.events import Event
from oneiric_core.text import one_line

from .. import format as fmt
from .event_lines import EventLines, _Entry

CAPS = {"kind": 32, "actor": 24, "ref": 32, "node": 24}  # a column never grows past this (the rest is cut with ...)


@dataclass
class Columns:
    """The widths of the journal's padded columns: the longest value seen, up to `CAPS`.
    `nodes`: the journal is a fleet store's, whose events come from many nodes, so each line
    says which (on one host's store every event is that host's: no column)."""

    kind: int = 12
    actor: int = 0
    ref: int = 0
    node: int = 0
    nodes: bool = False

    def widen(self, event: Event) -> bool:
        """Make room for `event`'s values; True when a width grew."""
        grew = False
        values = [("kind", event.kind), ("actor", event.actor or ""), ("ref", event.ref_text)]
        if self.nodes:
            values.append(("node", event.node or ""))
        for name, value in values:
            width = min(len(one_line(value)), CAPS[name])
            if width > getattr(self, name):
                setattr(self, name, width)
                grew = True
        return grew


def _cell(value: str, width: int) -> str:
    value = one_line(value)
    if len(value) > width:
        value = value[:max(width - 3, 0)] + "..."
    return f"{value:<{width}}"


def journal_parts(event: Event, columns: Columns) -> list[tuple[str, str]]:
    """A journal line as (text, style) pieces: date and time, severity, kind, who, which
    component, what happened; outside text as one line of plain text (oneiric_core.text)."""
    sym, word, style = fmt.SEVERITY.get(event.severity.value, ("?", "?", ""))
    parts = [(time.strftime("%H:%M:%S ", time.localtime(event.ts)), "dim"), (f"{sym} {word:<5} ", style),
             (_cell(event.kind, columns.kind) + " ", "bold" if event.severity.value != "info" else "")]
    if columns.node:
        parts.insert(2, (_cell(event.node or "", columns.node) + " ", "magenta"))
    if columns.actor:
        parts.append((_cell(event.actor or "", columns.actor) + " ", "dim"))
    if columns.ref:
        parts.append((_cell(event.ref_text, columns.ref) + " ", "cyan"))
    parts.append((one_line(event.message), style if event.severity.value == "error" else ""))
    return parts


class JournalLines(EventLines, can_focus=True, inherit_bindings=False):
    # No scrolling keys of its own: the screen's keys move the cursor, and the view scrolls to it.
    """Every event kept, with a cursor; `wrap` folds long lines, `follow` keeps the newest in view."""

    DEFAULT_CSS = """
    JournalLines { background: $surface; color: $text; overflow-y: scroll; overflow-x: hidden; }
    """

    def __init__(self, max_events: int, *, nodes: bool = False, **kwargs) -> None:
        self.columns = Columns(nodes=nodes)
        super().__init__(self._styled_line, max_events, plain_event=self._plain_line, **kwargs)
        self.cursor = -1  # index into the kept events; -1: none yet
        self.wrap = True
        self.follow = True

    def _styled_line(self, event: Event) -> Text:
        return Text.assemble(*journal_parts(event, self.columns))

    def _plain_line(self, event: Event) -> str:
        return "".join(text for text, _ in journal_parts(event, self.columns))

    # -- content ---------------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> None:
        events = list(events)
        if any([self.columns.widen(e) for e in events]):  # every event widens, not only the first
            self._relayout()
        before = len(self._entries)
        dropped = max(0, before + len(events) - self.max_events)
        super().add(events)
        if self.follow or self.cursor < 0:
            self.cursor = len(self._entries) - 1
        else:
            self.cursor = max(0, self.cursor - dropped)
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self._strips.clear()

    def _following(self) -> bool:
        return self.follow

    def clear(self) -> None:
        super().clear()
        self.cursor = -1

    def _relayout(self) -> None:
        """The columns changed: every kept line's text does too."""
        for entry in self._entries:
            entry.plain = self._plain_line(entry.event)
            entry.width = -1
        self._index_dirty = True
        self._strips.clear()
        self._update_size()
        self.refresh()

    def set_wrap(self, wrap: bool) -> None:
        self.wrap = wrap
        self._relayout()
        self.show_cursor()

    def _fold(self, entry: _Entry, width: int) -> None:
        if self.wrap:
            super()._fold(entry, width)
        elif entry.width != width:
            entry.rows, entry.width = [(0, len(entry.plain))], width

    # -- the cursor ------------------------------------------------------------------------
    @property
    def cursor_event(self) -> Event | None:
        return self._entries[self.cursor].event if 0 <= self.cursor < len(self._entries) else None

    def cursor_text(self) -> str:
        """The cursor's event as one line of plain text, as the view shows it unfolded."""
        return self._entries[self.cursor].plain.rstrip() if self.cursor_event is not None else ""

    def move_cursor(self, index: int) -> None:
        if not self._entries:
            return
        self.cursor = max(0, min(index, len(self._entries) - 1))
        self._strips.clear()
        self.show_cursor()
        self.refresh()

    def _cursor_rows(self) -> tuple[int, int]:
        """The screen rows (first, after last) of the cursor's event."""
        self._rebuild_index()
        target = self._entries[self.cursor]
        first = None
        for row_no, (entry, _) in enumerate(self._index[self._base:]):
            if entry is target:
                if first is None:
                    first = row_no
            elif first is not None:
                return first, row_no
        return (first or 0), self.screen_rows

    def show_cursor(self) -> None:
        if self.cursor_event is None:
            return
        first, end = self._cursor_rows()
        height = self.scrollable_content_region.height
        y = self.scroll_y
        if first < y:
            self.scroll_to(y=first, animate=False, immediate=True)
        elif end > y + height:
            self.scroll_to(y=max(0, end - height), animate=False, immediate=True)

    def _strip(self, entry: _Entry, row: int, width: int) -> Strip:
        strip = super()._strip(entry, row, width)
        if self.cursor_event is entry.event:
            strip = strip.apply_style(self.app.console.get_style("reverse"))
        return strip


__all__ = ["CAPS", "Columns", "JournalLines", "journal_parts"]
