"""The swap log: the journal's changes, newest at the bottom, bounded, filterable with `/`.

Only changes (swaps, rollbacks, pauses, health, settings: oneiric_core.journal_view decides);
incident events go to the incident views and everything is in the full journal view (`L`).

It starts with history from the store and then appends live events as they arrive in
batches. Filtering redraws from a bounded in-memory copy; it never reads the store. The
lines themselves are drawn only when on screen (`EventLines`), so a storm of events costs
list appends, not rendering.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input

from oneiric_core.events import Event
from oneiric_core.journal_view import is_change
from oneiric_core.text import one_line, plain

from .. import format as fmt
from ..keys import vim_keys
from .event_lines import EventLines

KEEP = 2000  # events kept in memory, for the lines on screen and for filtering
KIND_WIDTH = 16  # a longer kind (signature-verification-failed) ends in "…": the columns stay put


@dataclass(frozen=True)
class LogFilter:
    """`/` filter: words match anywhere; `kind:`, `domain:`, `key:`, `sev:`, `node:` narrow by field."""

    words: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str) -> LogFilter:
        words, fields = [], []
        for token in text.lower().split():
            name, sep, value = token.partition(":")
            if sep and value and name in ("kind", "domain", "key", "sev", "severity", "provider", "actor", "node"):
                fields.append(("severity" if name == "sev" else name, value))
            else:
                words.append(token)
        return cls(tuple(words), tuple(fields))

    @property
    def active(self) -> bool:
        return bool(self.words or self.fields)

    def matches(self, event: Event) -> bool:
        if not (self.words or self.fields):
            return True  # no filter: the common case, checked for every event of a storm
        values = {
            "kind": event.kind, "domain": event.domain.value if event.domain else "",
            "key": event.key or "", "severity": event.severity.value,
            "provider": event.provider or "", "actor": event.actor or "", "node": event.node or "",
        }
        for name, value in self.fields:
            if value not in values[name].lower():
                return False
        haystack = " ".join([event.message, event.kind, event.ref_text, event.provider or "",
                             event.actor or ""]).lower()
        return all(word in haystack for word in self.words)

    def describe(self) -> str:
        return " ".join([*self.words, *(f"{n}:{v}" for n, v in self.fields)])


def event_parts(event: Event) -> list[tuple[str, str]]:
    """A journal line as (text, style) pieces: time, severity (symbol and word), kind, who,
    which component, what happened. Who and what are outside text (operator names, notes,
    reasons, provider errors): one line of plain text each (oneiric_core.text)."""
    sym, word, style = fmt.SEVERITY.get(event.severity.value, ("?", "?", ""))
    parts = [(time.strftime("%H:%M:%S ", time.localtime(event.ts)), "dim"), (f"{sym} {word:<5} ", style),
             (f"{fmt.pad(one_line(event.kind), KIND_WIDTH)} ", "bold" if event.severity.value != "info" else "")]
    if event.actor:
        parts.append((f"{one_line(event.actor)}  ", "dim"))
    if event.ref_text and event.ref_text not in event.message:
        parts.append((f"{one_line(event.ref_text)} ", "cyan"))
    parts.append((one_line(event.message), style if event.severity.value == "error" else ""))
    return parts


def event_line(event: Event) -> Text:
    return Text.assemble(*event_parts(event))


def event_plain(event: Event) -> str:
    """The line's characters only: what the log keeps for every event (styles are applied
    when a line is drawn)."""
    return "".join(text for text, _ in event_parts(event))


class SwapLog(Vertical):
    ALLOW_MAXIMIZE = True  # a container, which Textual would not zoom (z) by default
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="log.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="log.clear_filter"),
        *vim_keys("log", down="scroll_down", up="scroll_up"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.can_focus = True
        self._events: deque[Event] = deque(maxlen=KEEP)
        self._seen: set[int] = set()
        self.filter = LogFilter()

    def compose(self):
        yield EventLines(event_line, KEEP, plain_event=event_plain, id="log-lines")

    def _filter_box(self) -> Input:
        """The filter input, mounted on first use: most sessions never filter, and every
        widget mounted before the first frame delays it."""
        found = self.query("#log-filter")
        if found:
            return found.first(Input)
        box = Input(placeholder="filter: words, kind:swap-rollback, domain:adapter, key:cache, sev:error",
                    id="log-filter")
        self.mount(box, before=self.lines)
        return box

    @property
    def lines(self) -> EventLines:
        return self.query_one("#log-lines", EventLines)

    def add(self, events: list[Event]) -> None:
        """Append the change events (duplicates by id are ignored: history and live may overlap)."""
        fresh = []
        for event in events:
            if not is_change(event):
                continue
            if event.id is not None:
                if event.id in self._seen:
                    continue
                self._seen.add(event.id)
                if len(self._seen) > KEEP * 2:
                    self._seen = {e.id for e in self._events if e.id is not None}
            self._events.append(event)
            if self.filter.matches(event):
                fresh.append(event)
        if fresh:
            self.lines.add(fresh[-KEEP:])

    def visible_events(self) -> list[Event]:
        return [e for e in self._events if self.filter.matches(e)]

    def apply_filter(self, text: str) -> None:
        self.filter = LogFilter.parse(text)
        log = self.lines
        log.clear()
        log.add(self.visible_events())
        # A border title is markup to Textual: the operator's filter words go in as plain text.
        self.border_subtitle = plain(f"filter: {self.filter.describe()}") if self.filter.active else ""

    def action_filter(self) -> None:
        box = self._filter_box()
        box.display = True
        box.value = self.filter.describe()
        box.focus()

    def action_clear_filter(self) -> None:
        for box in self.query("#log-filter"):
            box.display = False
        if self.filter.active:
            self.apply_filter("")
        self.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """`enter` applies the filter and closes the box: the filter stays in the pane's
        border. A box left on screen without the focus looked like it still took text, and
        the next word typed into it reached the console's keys instead."""
        event.stop()
        self.apply_filter(event.value)
        event.input.display = False
        self.focus()

    def action_scroll_down(self) -> None:
        self.lines.scroll_down()

    def action_scroll_up(self) -> None:
        self.lines.scroll_up()

    def action_scroll_home(self) -> None:
        self.lines.scroll_home()

    def action_scroll_end(self) -> None:
        self.lines.scroll_end()
