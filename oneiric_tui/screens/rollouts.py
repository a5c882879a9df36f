"""Rollouts (`:rollout`, `:rollout KEY PROVIDER`): the fleet's recent rollouts and, for the one
highlighted, each node's step, live (read from the store in a thread every second: the hosts
carry rollouts out, whichever console started them). `a` approves and `x` rejects the
highlighted pending rollout, each after asking. The rules (planning, the one approval, the
two-person rule) are oneiric_core.rollout's; node names, providers and messages are outside
text: plain, one line each."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from oneiric_core.errors import OneiricError
from oneiric_core.rollout import decide_rollout, describe_plan, progress_line
from oneiric_core.store import RolloutRecord, StoreError
from oneiric_core.text import one_line

from ..widgets.key_bar import KeyBar
from .confirm import ConfirmDialog

REFRESH_S = 1.0
STATUS_STYLE = {"done": "green", "running": "bold", "soaking": "bold", "swapping": "bold", "halted": "bold red",
                "halting": "bold red", "failed": "bold red", "rollback-failed": "bold red", "rolled-back": "yellow",
                "pending": "dim", "skipped": "dim", "rejected": "dim"}


class RolloutsScreen(Screen):
    DEFAULT_CSS = """
    RolloutsScreen #rollouts-head { height: auto; padding: 0 1; background: $panel; }
    RolloutsScreen #rollouts-list { height: auto; max-height: 40%; border: round $panel-lighten-2; }
    RolloutsScreen #rollout-steps { height: 1fr; border: round $panel-lighten-2; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="rollouts.leave"),
        Binding("a", "approve", "Approve", id="rollouts.approve"),
        Binding("x", "reject", "Reject", id="rollouts.reject"),
        Binding("q", "app.quit_console", "Quit", show=False, id="rollouts.quit"),
    ]

    def __init__(self, focus_id: int | None = None) -> None:
        super().__init__()
        self.focus_id = focus_id
        self.rollouts: list[RolloutRecord] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(" Rollouts ", style="bold reverse"), id="rollouts-head")
        yield DataTable(id="rollouts-list", cursor_type="row")
        yield DataTable(id="rollout-steps", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#rollouts-list", DataTable).add_columns("#", "key", "to", "status", "progress")
        self.query_one("#rollout-steps", DataTable).add_columns("batch", "node", "step", "from", "message")
        self.query_one("#rollouts-list").border_title = "Recent rollouts (a approve, x reject)"
        self.query_one("#rollout-steps").border_title = "Its nodes"
        self.reload()
        self.set_interval(REFRESH_S, self.reload)

    @work(thread=True, exclusive=True, group="rollouts", exit_on_error=False)
    def reload(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            rollouts = engine.store.rollouts.recent(limit=20)
        except StoreError as exc:
            self.app.call_from_thread(self.notify, f"cannot read the rollouts: {exc}", severity="error",
                                      markup=False)
            return
        self.app.call_from_thread(self.show, rollouts)

    def show(self, rollouts: list[RolloutRecord]) -> None:
        self.rollouts = rollouts
        table = self.query_one("#rollouts-list", DataTable)
        keep = self.focus_id if self.focus_id is not None else self._highlighted_id()
        table.clear()
        for r in rollouts:
            done = sum(1 for s in r.steps if s.status == "done")
            table.add_row(str(r.id), Text(one_line(r.ref)), Text(one_line(r.provider)),
                          Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                          Text(f"{done}/{len(r.steps)} nodes, batch {r.batch + 1}/{len(r.plan)}"), key=str(r.id))
        ids = [r.id for r in rollouts]
        if keep in ids:
            table.move_cursor(row=ids.index(keep))
        self.focus_id = None
        head = Text()
        head.append(" Rollouts ", style="bold reverse")
        current = self._current()
        head.append(f"  {one_line(progress_line(current))}" if current else
                    "  none yet: :rollout KEY PROVIDER starts one (or oneiric rollout)")
        self.query_one("#rollouts-head", Static).update(head)
        self._show_steps(current)

    def _highlighted_id(self) -> int | None:
        table = self.query_one("#rollouts-list", DataTable)
        if not self.rollouts or table.cursor_row is None or table.cursor_row >= len(self.rollouts):
            return None
        return self.rollouts[table.cursor_row].id

    def _current(self) -> RolloutRecord | None:
        wanted = self._highlighted_id()
        return next((r for r in self.rollouts if r.id == wanted), self.rollouts[0] if self.rollouts else None)

    def _show_steps(self, rollout: RolloutRecord | None) -> None:
        steps = self.query_one("#rollout-steps", DataTable)
        steps.clear()
        if rollout is None:
            return
        steps.border_title = one_line(describe_plan(rollout))
        for step in rollout.steps:
            steps.add_row(str(step.batch + 1), Text(one_line(step.node)),
                          Text(step.status, style=STATUS_STYLE.get(step.status, "")),
                          Text(one_line(step.from_provider or "-")), Text(one_line(step.message)))

    @on(DataTable.RowHighlighted, "#rollouts-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_steps(self._current())

    def _decide(self, verdict: str) -> None:
        rollout = self._current()
        if rollout is None or rollout.status != "pending":
            self.notify("No pending rollout is highlighted.", severity="warning", markup=False)
            return
        if not self.app.can_change:  # type: ignore[attr-defined]
            self.notify("read-only: deciding a rollout changes the fleet", severity="warning", markup=False)
            return
        verb = "Approve" if verdict == "approved" else "Reject"

        def decided(yes: bool | None) -> None:
            if not yes:
                return
            try:
                message = decide_rollout(self.app.engine, rollout.id, verdict)  # type: ignore[attr-defined]
            except OneiricError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.notify(message, markup=False)
            self.reload()

        self.app.push_screen(ConfirmDialog(f"{verb} rollout #{rollout.id}?", one_line(describe_plan(rollout)),
                                           confirm_label=verb), decided)

    def action_approve(self) -> None:
        self._decide("approved")

    def action_reject(self) -> None:
        self._decide("rejected")

    def action_leave(self) -> None:
        self.app.pop_screen()


__all__ = ["RolloutsScreen"]
