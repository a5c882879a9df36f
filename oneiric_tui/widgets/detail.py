"""Detail / explain for the highlighted key: who wins and why, what serves, how it is doing.

Nearly every value here is outside text (provider and source names, notes, who acted,
health messages, errors, factory paths, a manifest's description): `_field` and the
candidates table put them in as plain text (oneiric_core.text), never as markup.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from oneiric_core.engine import ComponentStatus
from oneiric_core.health import HealthTrack
from oneiric_core.resolver import Explanation
from oneiric_core.text import plain

from .. import format as fmt
from ..keys import vim_keys

TREND_WIDTH = 16  # the health line's sparkline (the history view, enter, has the full plot)


def _field(name: str, value: str | Text, style: str = "") -> Text:
    text = Text()
    text.append(f"{name:<11}", style="bold")
    text.append_text(value if isinstance(value, Text) else plain(value, style))
    return text


def short_paths(settings_dir: Path | None) -> Callable[[str], str]:
    """What shortens a text's paths into the settings directory to `settings/adapters.yml`
    (the directory's own name on): a whole path wraps the selection line in two and crowds
    the candidates' reasons out of their column."""
    if settings_dir is None:
        return lambda text: text
    prefix = str(Path(settings_dir).resolve().parent) + os.sep
    return lambda text: text.replace(prefix, "")


def render_detail(status: ComponentStatus, explanation: Explanation | None, track: HealthTrack | None,
                  focus_provider: str | None = None, settings_dir: Path | None = None) -> RenderableType:
    """The explain view, compact enough to show adapter/cache's four candidates and its
    last swap's total at 120x40 without scrolling: the key heads a line with its state, the
    winner and what serves share a line when they are the same, the trend sits in the
    health line, and the candidates' reasons are cut with an ellipsis (`oneiric explain`
    prints them whole)."""
    short = short_paths(settings_dir)
    parts: list[RenderableType] = []
    heading = plain(status.ref, "bold underline")
    sym, word, style = fmt.STATE.get(status.state, ("", status.state.upper(), ""))
    heading.append("  ")
    heading.append(f"{sym} {word}" if word else status.state, style=style or "bold")
    asym, aword, astyle = fmt.ACTIVITY.get(status.activity, ("", "", ""))
    heading.append(", ")
    heading.append(f"{asym} {aword}" if aword else status.activity, style=astyle)
    if status.activity_actor:
        heading.append_text(plain(f" by {status.activity_actor}", astyle))
    if status.activity_note:
        heading.append_text(plain(f" ({status.activity_note})", astyle))
    heading.append(f", {status.inflight} in flight")
    parts.append(heading)
    winner = f"{status.winner} ({status.winner_source})" if status.winner else "none"
    serving = f"{status.serving} ({status.serving_source})" if status.serving else "nothing"
    serves = bool(status.winner) and winner == serving
    selection_line: Text | None = None
    selected_here = ""  # where the winner was selected, when the selection names it
    if status.misconfigured:
        sym, word, style = fmt.MISCONFIGURED
        selection_line = _field("selection", f"{sym} {word}: {status.misconfigured}", style)
    elif explanation is not None:
        where = short(str(explanation.selection_file))
        selection_line = _field("selection", f"{explanation.selection or 'none'} in {where}")
        if explanation.selection and explanation.selection == status.winner:
            selected_here = where
    if serves and selected_here:  # the common case in one line: the selected provider won and serves
        parts.append(_field("winner", f"{winner}, serving, selected in {selected_here}"))
    else:
        parts.append(_field("winner", f"{winner}, serving" if serves else winner))
        if selection_line is not None:
            parts.append(selection_line)
    if not serves:
        parts.append(_field("serving", serving))
    if status.proposal:
        p = status.proposal
        sym, word, style = fmt.PROPOSAL
        parts.append(_field("proposal", f"{sym} {word} #{p['id']}: {p.get('from') or 'nothing'} -> {p['to']}"
                            f" by {p.get('requested_by')} via {p.get('source')}; waiting for approval (5)", style))
    hsym, hword, hstyle = fmt.HEALTH.get(status.health, fmt.HEALTH["unknown"])
    health = f"{hsym} {hword}  {fmt.ms(status.latency_ms)}"
    if track is not None and track.samples:
        health += f"  {fmt.sparkline([s.latency_ms for s in track.samples], TREND_WIDTH)}"
    if status.health_message:
        health += f"  {status.health_message}"
    parts.append(_field("health", health, hstyle))
    if status.last_error:
        parts.append(_field("last error", status.last_error, "red"))
    swap = status.last_swap
    if swap:
        line = f"{swap.get('outcome')}  {swap.get('from') or 'nothing'} -> {swap.get('to')}"
        timings = [f"{name} {fmt.ms(swap.get(field))}" for name, field in (
            ("build", "activation_ms"), ("health", "health_ms"), ("cleanup", "cleanup_ms"), ("total", "total_ms"))
            if swap.get(field) is not None]
        parts.append(_field("last swap", line + (f"  by {swap['actor']}" if swap.get("actor") else "")))
        if timings:
            parts.append(_field("", "  ".join(timings), "dim"))
        if swap.get("outcome") not in ("complete", "noop") and swap.get("reason"):
            parts.append(_field("", swap["reason"], "yellow"))
    if explanation is not None and explanation.ranked:
        # One line a candidate, the header its only rule: the ranking reads at a glance.
        table = Table(box=None, show_edge=False, pad_edge=False, expand=True, header_style="bold underline")
        table.add_column("#", no_wrap=True)
        table.add_column("candidate, in rank order", no_wrap=True)
        table.add_column("prio", justify="right", no_wrap=True)
        table.add_column("stack", justify="right", no_wrap=True)
        table.add_column("why", ratio=1, no_wrap=True, overflow="ellipsis")
        for r in explanation.ranked:
            c = r.candidate
            mark = fmt.WINNER[0] if r.winner else fmt.SHADOWED[0]
            style = "reverse" if focus_provider == c.provider else ("bold" if r.winner else "")
            table.add_row(f"{mark}{r.rank}", plain(f"{c.provider} ({c.source})"), str(c.priority),
                          str(r.effective_stack_level), plain(short(r.reason)), style=style)
        parts.append(table)
        if focus_provider:
            cand = next((r.candidate for r in explanation.ranked if r.candidate.provider == focus_provider), None)
            if cand is not None:
                parts.append(_field("factory", cand.factory, "dim"))
                description = cand.metadata.get("description")
                if description:
                    parts.append(_field("about", str(description), "dim"))
    return Group(*parts)


class DetailPane(VerticalScroll):
    """Scrollable explain view; the app pushes new content when the selection or its state changes."""

    ALLOW_MAXIMIZE = True  # a container, which Textual would not zoom (z) by default

    BINDINGS = [
        *vim_keys("detail", down="scroll_down", up="scroll_up"),
    ]

    def compose(self):
        yield Static(Text("Select a component in the tree.", style="dim"), id="detail-body")

    shown: RenderableType | None = None
    """What the pane shows now (kept so tests and exports can read it)."""

    def show(self, renderable: RenderableType) -> None:
        self.shown = renderable
        self.query_one("#detail-body", Static).update(renderable)
