"""A component's history (`enter` in Health, `:history KEY`): health latency over time as a
plot, with the key's swaps, rollbacks and health changes marked where they happened.

Why a plot and not the sparkline: sixteen cells say "it went up", not when, nor whether it went
up right after the swap to redis. Here the latency line and the journal's events share one
time axis. The picture is built in the core (oneiric_core/component_history.py) from the
health samples and the journal, the same as host and as client; this screen only draws it,
and reads it again every few seconds while open.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from oneiric_core.component_history import ComponentHistory, Marker
from oneiric_core.domains import ComponentRef
from oneiric_core.text import one_line

from .. import format as fmt
from ..console_port import ConsoleState
from ..widgets.key_bar import KeyBar

RELOAD_S = 2.0
RECENT = 6  # markers listed under the plot, newest first
# How each kind of marker is drawn: its legend word, the character on the plot, its colour.
MARKS = {"swap": ("swap", "s", "blue"), "rollback": ("rollback", "x", "red"),
         "health": ("health change", "!", "yellow")}


def legend(history: ComponentHistory) -> Text:
    """The markers' key, with how many of each the plot shows (plain words: it reads the same
    without colour)."""
    counts = history.counts()
    text = Text("markers: ", style="bold")
    for kind, (word, char, colour) in MARKS.items():
        text.append(f"{char} ", style=f"bold {colour}")
        text.append(f"{word} ({counts[kind]})   ")
    return text


def recent_lines(markers: tuple[Marker, ...], now: float) -> Text:
    if not markers:
        return Text("No swap, rollback or health change of this key in the journal over this span.", style="dim")
    text = Text()
    for marker in sorted(markers, key=lambda m: m.ts, reverse=True)[:RECENT]:
        word, char, colour = MARKS[marker.kind]
        if text:
            text.append("\n")
        text.append(time.strftime("%H:%M:%S", time.localtime(marker.ts)), style="dim")
        text.append(f"  {char} ", style=f"bold {colour}")
        text.append(one_line(marker.label))
        text.append(f"  ({fmt.ago(marker.ts, now)} ago)", style="dim")
    return text


def time_axis(history: ComponentHistory, now: float) -> tuple[float, str]:
    """The x axis's unit: seconds for a short span, else minutes (before now)."""
    times = [s.ts for s in history.samples] + [m.ts for m in history.markers]
    span = now - min(times, default=now)
    return (1.0, "seconds before now") if span < 180 else (60.0, "minutes before now")


class HistoryScreen(Screen[None]):
    """One key's history, full screen; `esc` goes back."""

    DEFAULT_CSS = """
    HistoryScreen #history-head { height: 1; padding: 0 1; background: $panel; }
    HistoryScreen #history-plot { height: 1fr; min-height: 8; }
    HistoryScreen #history-legend { height: 1; padding: 0 1; }
    HistoryScreen #history-note { height: auto; padding: 0 1; color: $text-muted; }
    HistoryScreen #history-recent { height: auto; max-height: 7; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="history.leave"),
        Binding("question_mark", "help", "Help", show=False, id="history.help"),
        Binding("q", "app.quit_console", "Quit", show=False, id="history.quit"),
    ]

    def __init__(self, ref: ComponentRef) -> None:
        super().__init__()
        self.ref = ref
        self.history: ComponentHistory | None = None

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="history-head")
        yield PlotextPlot(id="history-plot")
        yield Static(id="history-legend")
        yield Static(id="history-note")
        yield Static(id="history-recent")
        yield KeyBar()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(RELOAD_S, self.reload)

    def reload(self) -> None:
        history = self.oneiric.component_history(self.ref)
        if history is None:
            self.query_one("#history-note", Static).update(
                Text(f"The history of {one_line(self.ref)} cannot be read now (the store did not answer)."))
            return
        self.history = history
        now = self.oneiric.clock()
        self._head(history)
        self._plot(history, now)
        self.query_one("#history-legend", Static).update(legend(history))
        self.query_one("#history-recent", Static).update(recent_lines(history.markers, now))
        note = "" if history.exact_times else (
            "As a client: the host stores latencies only, so the samples are drawn one health interval apart, "
            "ending at its last check.")
        self.query_one("#history-note", Static).update(Text(note))

    def _head(self, history: ComponentHistory) -> None:
        sym, word, style = fmt.HEALTH.get(history.status, fmt.HEALTH["unknown"])
        head = Text()
        head.append(f" History: {one_line(self.ref)} ", style="bold reverse")
        head.append(f"  served by {one_line(history.provider or 'nothing')}  ")
        head.append(f"{sym} {word}", style=style)
        head.append(f"  {len(history.samples)} samples")
        self.query_one("#history-head", Static).update(head)

    def _plot(self, history: ComponentHistory, now: float) -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        unit, label = time_axis(history, now)
        times, latencies = history.points()
        xs = [(t - now) / unit for t in times]
        top = max(latencies, default=1.0) or 1.0
        if xs:
            plt.plot(xs, latencies, marker="braille", label="latency ms")
        shown: set[str] = set()
        for marker in history.markers:
            word, char, colour = MARKS[marker.kind]
            x = (marker.ts - now) / unit
            plt.vertical_line(x, colour)
            plt.scatter([x], [top], marker=char, color=colour, label=None if marker.kind in shown else word)
            shown.add(marker.kind)
        plt.title(f"{one_line(self.ref)}: health latency (ms)")
        plt.xlabel(label)
        plt.ylim(0, top * 1.1)
        widget.refresh()

    def action_leave(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))


__all__ = ["HistoryScreen", "legend", "recent_lines"]
