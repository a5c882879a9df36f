"""Detail / explain for the highlighted key: who wins and why, what serves, how it is doing.

Nearly every value here is outside text (provider and source names, notes, who acted,
health messages, errors, factory paths, a manifest's description): `_field` and the
candidates table put them in as plain text (oneiric_core.text), never as markup.
"""

from __future__ import annotations

from rich import box
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


def _field(name: str, value: str | Text, style: str = "") -> Text:
    text = Text()
    text.append(f"{name:<11}", style="bold")
    text.append_text(value if isinstance(value, Text) else plain(value, style))
    return text


def render_detail(status: ComponentStatus, explanation: Explanation | None, track: HealthTrack | None,
                  focus_provider: str | None = None) -> RenderableType:
    parts: list[RenderableType] = []
    parts.append(plain(status.ref, "bold underline"))
    winner = f"{status.winner} ({status.winner_source})" if status.winner else "none"
    parts.append(_field("winner", winner))
    if status.misconfigured:
        sym, word, style = fmt.MISCONFIGURED
        parts.append(_field("selection", f"{sym} {word}: {status.misconfigured}", style))
    elif explanation is not None:
        selection = (f"{explanation.selection} in {explanation.selection_file}" if explanation.selection
                     else f"none in {explanation.selection_file}")
        parts.append(_field("selection", selection))
    serving = f"{status.serving} ({status.serving_source})" if status.serving else "nothing"
    parts.append(_field("serving", serving))
    if status.proposal:
        p = status.proposal
        sym, word, style = fmt.PROPOSAL
        parts.append(_field("proposal", f"{sym} {word} #{p['id']}: {p.get('from') or 'nothing'} -> {p['to']}"
                            f" by {p.get('requested_by')} via {p.get('source')}; waiting for approval (5)", style))
    sym, word, style = fmt.STATE.get(status.state, ("", status.state.upper(), ""))
    parts.append(_field("lifecycle", f"{status.state}" + (f"  {sym} {word}" if word else ""), style))
    parts.append(_field("in flight", str(status.inflight)))
    sym, word, style = fmt.ACTIVITY.get(status.activity, ("", "", ""))
    activity = status.activity + (f" by {status.activity_actor}" if status.activity_actor else "")
    activity += f" ({status.activity_note})" if status.activity_note else ""
    parts.append(_field("activity", (f"{sym} {word}  " if word else "") + activity, style))
    hsym, hword, hstyle = fmt.HEALTH.get(status.health, fmt.HEALTH["unknown"])
    health = f"{hsym} {hword}  {fmt.ms(status.latency_ms)}"
    if status.health_message:
        health += f"  {status.health_message}"
    parts.append(_field("health", health, hstyle))
    if track is not None and track.samples:
        parts.append(_field("trend", fmt.sparkline([s.latency_ms for s in track.samples], 40)))
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
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True, title_justify="left")
        table.add_column("#", no_wrap=True)
        table.add_column("candidate", no_wrap=True)
        table.add_column("prio", justify="right", no_wrap=True)
        table.add_column("stack", justify="right", no_wrap=True)
        table.add_column("why", ratio=1, overflow="fold")  # a long path folds, never cut off
        for r in explanation.ranked:
            c = r.candidate
            mark = fmt.WINNER[0] if r.winner else fmt.SHADOWED[0]
            style = "reverse" if focus_provider == c.provider else ("bold" if r.winner else "")
            table.add_row(f"{mark}{r.rank}", plain(f"{c.provider} ({c.source})"), str(c.priority),
                          str(r.effective_stack_level), plain(r.reason), style=style)
        parts.append(Text(""))
        parts.append(Text("candidates, in rank order", style="bold"))
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
