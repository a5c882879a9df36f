"""The main view: five panes, the operator's actions on the highlighted component.

Everything here renders what the engine reports and calls the engine to act. Long work
(swaps, drains, probes) runs in workers so the panes keep updating, and every change an
operator makes is confirmed in a dialog first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from oneiric_core.domains import ComponentRef
from oneiric_core.errors import OneiricError
from oneiric_core.lifecycle import SwapOutcome

from .messages import RefHighlighted, SwapDone
from .screens.approval_dialog import ApprovalDialog
from .screens.confirm import ConfirmDialog
from .screens.help import HelpScreen, help_sections
from .screens.swap_picker import PickerOption, SwapChoice, SwapPicker
from .widgets.approvals import ApprovalsTable
from .widgets.component_tree import ComponentTree
from .widgets.detail import DetailPane, render_detail
from .widgets.health_table import HealthTable
from .widgets.key_bar import KeyBar
from .widgets.remote_table import RemoteTable
from .widgets.swap_log import SwapLog

if TYPE_CHECKING:
    from oneiric_core.commands import CommandResult

    from .app import OneiricApp

PANES = (("tree", "Components"), ("detail", "Explain"), ("health", "Health"), ("log", "Swap log"),
         ("approvals", "Approvals"), ("remote", "Remote"))
# Actions that change the system: dimmed and inert in read-only mode or as a client.
DETAIL_SETTLE_S = 0.06
MUTATING = {"swap", "edit_selection", "pause", "drain", "resume", "approve_selected", "reject_selected",
            "sync_remote"}


class MainScreen(Screen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [
        *(Binding(str(i), f"focus_pane('{pane}')", title, show=False, id=f"pane.{pane}")
          for i, (pane, title) in enumerate(PANES, start=1)),
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, priority=True, id="pane.next"),
        Binding("shift+tab", "cycle_pane(-1)", "Previous pane", show=False, priority=True, id="pane.previous"),
        Binding("s", "swap", "Swap", id="component.swap"),
        Binding("e", "edit_selection", "Select", show=False, id="component.edit_selection"),
        Binding("p", "pause", "Pause", id="component.pause"),
        Binding("d", "drain", "Drain", id="component.drain"),
        Binding("r", "resume", "Resume", id="component.resume"),
        Binding("h", "probe", "Probe", id="component.probe"),
        Binding("a", "focus_pane('approvals')", "Approvals", show=False, id="approvals.open"),
        Binding("i", "incident", "Incident", id="incident.open"),
        Binding("7", "incident", "Incident", show=False, id="pane.incident"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "app.quit_console", "Quit", id="app.quit"),
    ]

    def __init__(self) -> None:
        # Start with the breakpoint class the terminal's width calls for: set later (on the
        # first resize) it would restyle every widget once more before the first frame.
        width = self.app.size.width
        super().__init__(classes=next(c for w, c in reversed(self.HORIZONTAL_BREAKPOINTS) if width >= w))
        self.current: ComponentRef | None = None
        self.current_provider: str | None = None
        self._detail_timer = None
        self._status_text: Text | None = None

    @property
    def oneiric(self) -> OneiricApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        yield Static(id="tabs")
        with Container(id="main"):
            # The tree starts active: its class given here, not on mount, saves a restyle.
            yield ComponentTree(self.oneiric.explanation, id="tree", classes="pane -active")
            yield DetailPane(id="detail", classes="pane")
            yield HealthTable(id="health", classes="pane")
            yield SwapLog(id="log", classes="pane")
            yield RemoteTable(id="remote", classes="pane")  # before approvals: the grid's bottom-left cell
            yield ApprovalsTable(id="approvals", classes="pane")
        yield KeyBar()  # every key still fits at 80 columns

    def on_mount(self) -> None:
        for index, (pane, title) in enumerate(PANES, start=1):
            self.query_one(f"#{pane}").border_title = f"{index} {title}"
        self.action_focus_pane("tree")
        self.oneiric.main_screen_ready()

    # -- panes -----------------------------------------------------------------------------
    def pane(self, name: str) -> Widget:
        return self.query_one(f"#{name}")

    def active_pane(self) -> str:
        focused = self.focused
        while focused is not None and focused is not self:
            if focused.has_class("pane"):
                return focused.id or "tree"
            focused = focused.parent  # type: ignore[assignment]
        return "tree"

    def action_focus_pane(self, name: str) -> None:
        for pane, _ in PANES:
            self.pane(pane).set_class(pane == name, "-active")
        self.pane(name).focus()
        self._render_tabs(name)

    def action_cycle_pane(self, step: int) -> None:
        names = [p for p, _ in PANES]
        current = names.index(self.active_pane())
        self.action_focus_pane(names[(current + step) % len(names)])

    def _render_tabs(self, active: str) -> None:
        text = Text()
        for index, (pane, title) in enumerate(PANES, start=1):
            label = f" {index} {title} "
            text.append(f"[{label.strip()}]" if pane == active else label,
                        style="reverse bold" if pane == active else "dim")
            text.append(" ")
        self.query_one("#tabs", Static).update(text)

    def on_descendant_focus(self) -> None:
        name = self.active_pane()
        for pane, _ in PANES:
            self.pane(pane).set_class(pane == name, "-active")
        self._render_tabs(name)

    # -- rendering what the engine says ----------------------------------------------------
    def update_status_bar(self, text: Text) -> None:
        """Redraw the one-line bar only when its words change, and without a layout pass: it
        is asked after every batch of events, and a layout pass redraws every pane."""
        if text != self._status_text:
            self._status_text = text
            self.query_one("#status-bar", Static).update(text, layout=False)

    @on(RefHighlighted)
    def _highlighted(self, message: RefHighlighted) -> None:
        """Remember the selection now; redraw the explain pane once the cursor settles, so
        holding `j` stays fast (the bindings do not depend on the selection: no footer work)."""
        self.current = message.ref
        self.current_provider = message.provider
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_SETTLE_S, self.show_detail)

    def show_detail(self) -> None:
        if self.current is None:
            return
        app = self.oneiric
        status = app.statuses.get(self.current)
        if status is None:
            return
        self.query_one(DetailPane).show(render_detail(
            status, app.explanation(self.current), app.engine.health.track(self.current), self.current_provider))

    # -- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and not self.oneiric.can_change:
            return None  # shown dimmed, does nothing
        if action == "probe" and self.oneiric.mode not in ("host", "starting", "client"):
            return None
        if action in ("approve_selected", "reject_selected") and self.active_pane() != "approvals":
            return False
        return True

    def _need_ref(self) -> ComponentRef | None:
        if self.current is None:
            self.notify("Highlight a component in the tree first.", severity="warning")
        return self.current

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_sections(self.app)))

    def action_incident(self) -> None:
        """`i` / `7`: the incident panel (pane 7), full screen; the highlighted component
        becomes the next walk's domain/key. A walk already running is shown as it stands."""
        from .widgets.incident_panel import IncidentScreen

        if not self.app.is_screen_installed("incident"):
            self.app.install_screen(IncidentScreen(), "incident")
        screen = self.app.get_screen("incident")
        screen.use_ref(self.current)  # type: ignore[attr-defined]
        self.app.push_screen("incident")

    def action_swap(self) -> None:
        ref = self._need_ref()
        if ref is None:
            return
        options = self._picker_options(ref)
        if options is not None:
            self.app.push_screen(SwapPicker(str(ref), options), lambda choice: self._picked(ref, choice))

    def _picker_options(self, ref: ComponentRef) -> list[PickerOption] | None:
        """The key's candidates in rank order, each with explain's reason and its last health."""
        app = self.oneiric
        explanation = app.explanation(ref)
        status = app.statuses.get(ref)
        if explanation is None or status is None:
            return None
        options = []
        for r in explanation.ranked:
            c = r.candidate
            serving = status.serving == c.provider and status.serving_source == c.source
            health, message = app.candidate_health(ref, c.provider)
            options.append(PickerOption(c.provider, c.source, r.rank, r.reason, serving, health, message))
        return options

    def action_edit_selection(self) -> None:
        """`e`: change the key's selection in its settings file (the permanent change); the
        host's settings watcher makes it a proposal like any other swap."""
        ref = self._need_ref()
        if ref is None:
            return
        options = self._picker_options(ref)
        if options is None:
            return
        explanation = self.oneiric.explanation(ref)
        where = explanation.selection_file if explanation else "its settings file"
        self.app.push_screen(
            SwapPicker(str(ref), options, title=f"Select for {ref} in {where} (permanent)...", allow_force=False,
                       allow_keep=False),
            lambda choice: self._edit_picked(ref, choice, where))

    def _edit_picked(self, ref: ComponentRef, choice: SwapChoice | None, where: str) -> None:
        if choice is None:
            return
        mode = self.oneiric.engine.approvals.mode
        then = ("the running host's settings watcher applies it at once (approvals: auto)" if mode == "auto" else
                "the running host's settings watcher turns it into a proposal waiting for approval")
        self._confirm_then(f"Select {choice.provider} for {ref}?",
                           f"Writes 'selection {ref.key}: {choice.provider}' into {where} (comments kept); {then}.",
                           "Write", lambda: self._write_selection(ref, choice.provider))

    @work(thread=True, group="settings")
    def _write_selection(self, ref: ComponentRef, provider: str) -> None:
        try:
            path = self.oneiric.engine.edit_selection(ref.domain, ref.key, provider)
        except OneiricError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False, timeout=10)
            return
        self.app.call_from_thread(self.notify, f"Wrote the selection {ref.key}: {provider} to {path.name}.",
                                  markup=False)

    def _picked(self, ref: ComponentRef, choice: SwapChoice | None) -> None:
        if choice is None:
            return
        app = self.oneiric
        try:
            plan = app.engine.lifecycle.plan(ref, choice.provider, source=choice.source, force=choice.force)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        from_provider = plan.from_provider
        if app.mode == "client":  # this process serves nothing: the host's snapshot says what serves
            status = app.statuses.get(ref)
            from_provider = status.serving if status else None
        risks = []
        if choice.force:
            risks.append("force skips the health gate: an unhealthy provider will be bound")
        health, message = app.candidate_health(ref, choice.provider)
        if health == "failed":
            risks.append(f"{choice.provider}'s last health check failed" + (f": {message}" if message else ""))
        keep_in = None
        if choice.keep:
            explanation = app.explanation(ref)
            keep_in = (explanation.selection_file if explanation else None) or ref.domain.settings_file
        dialog = ApprovalDialog(
            ref_label=str(ref), key=ref.key, from_provider=from_provider, to_provider=plan.to_provider,
            to_source=plan.to_source, reason=plan.reason, blockers=plan.blockers, force=choice.force,
            high_risk=bool(risks), risk_reasons=risks, keep_in=keep_in,
        )
        self.app.push_screen(dialog, lambda ok: self._run_swap(ref, choice) if ok else None)

    @work(group="swaps")
    async def _run_swap(self, ref: ComponentRef, choice: SwapChoice) -> None:
        app = self.oneiric
        if app.mode == "client":
            then = (lambda _result: self._write_selection(ref, choice.provider)) if choice.keep else None
            self._send("swap", _ref_args(ref, provider=choice.provider, to_source=choice.source,
                                         force=choice.force, source="console", approve=True),
                       f"Asking the host to swap {ref} to {choice.provider}...", then=then)
            return
        app.swapping.add(ref)
        self.notify(f"Swapping {ref} to {choice.provider}...", markup=False)
        try:
            proposal, result = await app.engine.request_swap(
                ref.domain, ref.key, choice.provider, to_source=choice.source, force=choice.force,
                source="console", approve=True, actor=app.engine.actor,
            )
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            app.swapping.discard(ref)
        self.post_message(SwapDone(proposal, result, keep=choice.keep))

    @on(SwapDone)
    def _swap_done(self, done: SwapDone) -> None:
        result, proposal = done.result, done.proposal
        if result is None:
            self.notify(f"Proposal #{proposal.id} waits for another operator to approve it.", markup=False)
        elif result.outcome == SwapOutcome.COMPLETE:
            message = f"{result.ref} now served by {result.to_provider} ({result.total_ms:.0f} ms)."
            explanation = self.oneiric.explanation(result.ref)
            winner = explanation.winner if explanation is not None else None
            against_ranking = winner is not None and winner.provider != result.to_provider
            if done.keep:  # chosen to keep: it becomes the selection in settings (the watcher
                self._write_selection(result.ref, result.to_provider)  # sees it already serves)
            elif against_ranking:
                # Chosen against the ranking: a host started later serves the winner again.
                message += (f" The settings still rank {winner.provider} first: a restart brings it back. "
                            "Press e to write the selection into settings.")
            self.notify(message, title="Swap complete", markup=False,
                        timeout=10 if against_ranking and not done.keep else 5)
        elif result.outcome == SwapOutcome.NOOP:
            self.notify(result.reason, markup=False)
        elif result.outcome == SwapOutcome.ROLLED_BACK:
            self.notify(f"{result.ref}: {result.reason}; {result.from_provider} keeps serving.",
                        title="Swap rolled back", severity="warning", markup=False, timeout=10)
        else:
            self.notify(f"{result.ref}: {result.reason}", title=f"Swap {result.outcome.value}",
                        severity="error", markup=False, timeout=10)
        self.oneiric.refresh_refs({result.ref} if result else set())

    def action_approve_selected(self) -> None:
        proposal_id = self.query_one(ApprovalsTable).selected_id
        if proposal_id is None:
            return
        record = self.oneiric.engine.approvals.get(proposal_id)
        self._confirm_then(
            f"Approve proposal #{proposal_id}?",
            f"{record.domain}/{record.key}: {record.from_provider or 'nothing'} -> {record.to_provider}, "
            f"asked by {record.requested_by}. The swap runs at once.", "Approve",
            lambda: self._approve(proposal_id))

    @work(group="swaps")
    async def _approve(self, proposal_id: int) -> None:
        app = self.oneiric
        if app.mode == "client":
            self._send("approve", {"id": proposal_id}, f"Asking the host to apply proposal #{proposal_id}...")
            return
        try:
            proposal, result = await app.engine.approve(proposal_id)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self.post_message(SwapDone(proposal, result))

    def action_reject_selected(self) -> None:
        proposal_id = self.query_one(ApprovalsTable).selected_id
        if proposal_id is None:
            return
        self._confirm_then(f"Reject proposal #{proposal_id}?", "It will never be applied.", "Reject",
                           lambda: self._act(lambda: self.oneiric.engine.reject(proposal_id),
                                             f"Rejected proposal #{proposal_id}.", ("reject", {"id": proposal_id})))

    def _confirm_then(self, title: str, body: str, label: str, then) -> None:
        self.app.push_screen(ConfirmDialog(title, body, label), lambda ok: then() if ok else None)

    def action_pause(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Pause {ref}?", "New work on it fails with 'paused' until it is resumed; "
                               "work in flight finishes. Swaps are refused unless forced.", "Pause",
                               lambda: self._act(lambda: self.oneiric.engine.pause(ref.domain, ref.key), f"Paused {ref}.",
                                                 ("pause", _ref_args(ref))))

    def action_resume(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Resume {ref}?", "It accepts new work again.", "Resume",
                               lambda: self._act(lambda: self.oneiric.engine.resume(ref.domain, ref.key), f"Resumed {ref}.",
                                                 ("resume", _ref_args(ref))))

    def action_drain(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Drain {ref}?", "New work is refused; the console waits for work in flight "
                               "to finish and then marks it drained.", "Drain", lambda: self._drain(ref))

    def action_probe(self) -> None:
        ref = self._need_ref()
        if ref is not None:
            self._confirm_then(f"Probe {ref} now?", "Runs its health check once, now, and journals the result.",
                               "Probe", lambda: self._probe(ref))

    def _act(self, fn, done: str, command: tuple[str, dict] | None = None) -> None:
        """Do a quick change here (host), or send it to the host as `command` (client)."""
        if self.oneiric.mode == "client" and command is not None:
            self._send(*command)
            return
        try:
            fn()
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(done, markup=False)
        self.oneiric.refresh_refs({self.current} if self.current else set())

    @work(group="drains")
    async def _drain(self, ref: ComponentRef) -> None:
        app = self.oneiric
        if app.mode == "client":
            self._send("drain", _ref_args(ref), f"Asking the host to drain {ref}...")
            return
        timer = self.set_interval(0.2, lambda: app.refresh_refs({ref}))
        try:
            record = await app.engine.drain(ref.domain, ref.key)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        finally:
            timer.stop()
        app.refresh_refs({ref})
        if record.state == "drained":
            self.notify(f"{ref} drained: no work in flight.", markup=False)
        else:
            self.notify(f"{ref} is {record.state}.", markup=False)

    def action_sync_remote(self) -> None:
        """`S` in the Remote pane: sync the highlighted source (every source if none) now."""
        source = self.query_one(RemoteTable).selected_source
        what = f"the remote source '{source}'" if source else "every remote source"
        self._confirm_then(f"Sync {what} now?", "Fetches and verifies the manifest and registers its entries "
                           "(an entry that disappears while serving becomes a swap proposal, never a removal).",
                           "Sync", lambda: self._sync_remote(source))

    @work(group="remote")
    async def _sync_remote(self, source: str | None) -> None:
        app = self.oneiric
        if app.mode == "client":
            self._send("sync", {"source": source} if source else {}, "Asking the host to sync...")
            return
        try:
            outcomes = await app.engine.remote.sync_now(source)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        for outcome in outcomes:
            failed = not outcome.ok
            self.notify(outcome.message(), severity="error" if failed else "information", markup=False,
                        timeout=10 if failed else 5)
        app.refresh_remote()

    def _send(self, kind: str, args: dict, progress: str | None = None,
              then: Callable[[CommandResult], object] | None = None) -> None:
        """Client mode: send an action to the host through the command queue and show its
        answer; the panes follow the host's journal as it acts. `then` runs (on the UI
        thread) when the host says it succeeded."""
        if progress:
            self.notify(progress, markup=False)
        self._ask_host(kind, args, then)

    @work(thread=True, group="commands")
    def _ask_host(self, kind: str, args: dict, then: Callable[[CommandResult], object] | None = None) -> None:
        try:
            result = self.oneiric.ask_host(kind, args)
        except OneiricError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False, timeout=10)
            return
        severity = "information" if result.ok else ("warning" if result.exit_code in (4, 5) else "error")
        self.app.call_from_thread(self.notify, result.message or f"{kind}: done", severity=severity,
                                  markup=False, timeout=10 if not result.ok else 5)
        self.app.call_from_thread(self.oneiric.follow_store)
        if then is not None and result.ok:
            self.app.call_from_thread(then, result)

    @work(group="probes")
    async def _probe(self, ref: ComponentRef) -> None:
        if self.oneiric.mode == "client":
            self._send("probe", _ref_args(ref))
            return
        try:
            track = await self.oneiric.engine.probe(ref.domain, ref.key, journal=True)
        except OneiricError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        if track is None:
            self.notify(f"Nothing serves {ref}, so there is nothing to probe.", severity="warning", markup=False)
        else:
            severity = {"ok": "information", "degraded": "warning"}.get(track.status.value, "error")
            self.notify(f"{ref} ({track.provider}): {track.status.value.upper()} {track.message}",
                        severity=severity, markup=False)


def _ref_args(ref: ComponentRef, **extra: object) -> dict[str, object]:
    return {"domain": ref.domain.value, "key": ref.key, **extra}
