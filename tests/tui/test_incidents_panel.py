"""The incident panel (pane 7) driven from the keyboard with Pilot, over a real engine on the demo."""

from __future__ import annotations

from oneiric_core.runbooks.incidents import Incidents
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.incident import IncidentScreen, TextPrompt
from oneiric_tui.screens.incident_dialogs import CloseIncidentDialog, SeverityDialog
from oneiric_tui.screens.param_dialog import ParamDialog
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text, to_cache


def _options(screen: IncidentScreen) -> list[str]:
    choices = screen.query_one("#inc-choices")
    return [choices.get_option_at_index(i).id or "" for i in range(choices.option_count)]


async def _pick(pilot, screen: IncidentScreen, option_id: str) -> None:
    """Move the choice list to `option_id` with j/k and press enter."""
    await until(pilot, lambda: option_id in _options(screen) and not screen.busy)
    choices = screen.query_one("#inc-choices")
    target = _options(screen).index(option_id)
    while choices.highlighted != target:
        await pilot.press("j" if (choices.highlighted or 0) < target else "k")
    await pilot.press("enter")
    await pilot.pause(0.1)


def _param_values(app) -> list[str]:
    dialog = app.screen
    return [c.value for c in dialog.asked.choices]


async def _choose_param(pilot, value: str) -> None:
    """In the parameter dialog, move to `value` with j/k and press enter."""
    app = pilot.app
    options = app.screen.query_one("#param-list")
    target = _param_values(app).index(value)
    while options.highlighted != target:
        await pilot.press("j" if (options.highlighted or 0) < target else "k")
    await pilot.press("enter")


async def _open_on_cache(pilot):
    """The incident screen, opened with adapter/cache highlighted in the main view."""
    app = pilot.app
    await to_cache(pilot)
    await until(pilot, lambda: str(app.main.current) == "adapter/cache")
    await pilot.press("i")
    await until(pilot, lambda: isinstance(app.screen, IncidentScreen))
    return app.screen


async def _open_on_paused_cache(pilot):
    app = await ready(pilot)
    app.engine.pause("adapter", "cache", note="maintenance by carol", actor="carol")
    return app, await _open_on_cache(pilot)


async def _walk_paused_cache_to_intentional(pilot, *, open_incident: bool = False):
    """Component not found on the paused adapter/cache, walked to its question 'intentional?';
    (app, screen, walker). With `open_incident`, `o` then opens one (its default severity)."""
    app, screen = await _open_on_paused_cache(pilot)
    await _pick(pilot, screen, "tree:component-not-found")
    walker = screen.walker
    await until(pilot, lambda: walker.node.id == "intentional" and not screen.busy)
    if open_incident:
        await open_with(pilot, screen)
    return app, screen, walker


async def open_with(pilot, screen: IncidentScreen, severity: str | None = None) -> None:
    """`o`, then the severity dialog: `severity` chosen with j/k (None: the preselected one)."""
    await pilot.press("o")
    await answer_severity(pilot, screen, severity)


async def answer_severity(pilot, screen: IncidentScreen, severity: str | None = None) -> None:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, SeverityDialog))
    options = app.screen.query_one("#severities")
    if severity is not None:
        target = ["P0", "P1", "P2", "P3"].index(severity)
        while options.highlighted != target:
            await pilot.press("j" if (options.highlighted or 0) < target else "k")
    await pilot.press("enter")
    await until(pilot, lambda: screen.incident_id is not None and app.screen is screen)


async def _walk_on_cache(pilot, tree: str):
    """Start walking `tree` on adapter/cache; (screen, walker)."""
    screen = await _open_on_cache(pilot)
    await _pick(pilot, screen, f"tree:{tree}")
    return screen, screen.walker


async def _answer_resume_and_finish(pilot, screen: IncidentScreen) -> None:
    """At component-not-found's 'intentional': answer no, perform the resume (confirmed with y),
    check the cache serves again, acknowledge the end."""
    app, walker = pilot.app, screen.walker
    await _pick(pilot, screen, "answer:no - resume it")
    await until(pilot, lambda: walker.node.id == "resume")
    await _pick(pilot, screen, "perform")
    await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    await pilot.press("y")
    if screen.incident_id is None:  # the first change: it asks the severity of the incident it opens
        await answer_severity(pilot, screen)
    await until(pilot, lambda: walker.node.kind == "done" and not screen.busy)
    assert app.engine.activity.get(app.engine.ref("adapter", "cache")).state == "active"
    await _pick(pilot, screen, "ack")
    await until(pilot, lambda: walker.finished)


async def test_console_drives_component_not_found_to_resume(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app, screen = await _open_on_paused_cache(pilot)
        assert "tree:component-not-found" in _options(screen)
        assert "Symptom chooser" in screen_text(app)
        await _pick(pilot, screen, "tree:component-not-found")
        walker = screen.walker
        # the first check finds the pause and who made it, then asks whether it was intended
        await until(pilot, lambda: walker.node.id == "intentional" and not screen.busy)
        assert walker.params == {"domain": "adapter", "key": "cache"}
        text = screen_text(app)
        assert "carol" in text and "blocked > intentional" in text
        # a look so far: nothing recorded
        assert "no incident (a look" in text and screen.incident_id is None
        assert Incidents(app.engine).list() == []
        await _answer_resume_and_finish(pilot, screen)
        assert "respond within" in screen_text(app)
        assert "The walk is finished" in screen_text(app)
        # the timeline (beside the walk, and in the store) has the steps, the answer and the action
        entries = Incidents(app.engine).entries(screen.incident_id)
        kinds = [e.kind for e in entries]
        # the steps walked before the resume opened it come first, then its opening, then the resume
        assert kinds.index("step") < kinds.index("status") < kinds.index("action") and "answer" in kinds
        assert any("resume" in e.text.lower() for e in entries if e.kind == "action")
        timeline = screen.timeline_text
        assert "-> no - resume it" in timeline and "-> paused" in timeline and "resume" in timeline
        # a note and the post-mortem
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press(*"resumed after carol's maintenance", "enter")
        await until(pilot, lambda: app.screen is screen)
        assert any(e.kind == "note" for e in Incidents(app.engine).entries(screen.incident_id))
        await pilot.press("x")
        await until(pilot, lambda: screen.last_export is not None)
        markdown = screen.last_export.read_text()
        assert "Post-mortem" in markdown and "no - resume it" in markdown and "carol" in markdown
        assert screen.last_export.stat().st_mode & 0o777 == 0o640  # private, as the whole state dir
        # the hand-off, then closing with a resolution
        await pilot.press("X")
        await until(pilot, lambda: screen.last_export.name.endswith("-handoff.md"))
        assert "Post-mortem" not in screen.last_export.read_text()
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, CloseIncidentDialog))
        await pilot.press(*"resumed the cache", "enter", *"pause left over", "enter", *"alert; review", "enter")
        await until(pilot, lambda: Incidents(app.engine).get(screen.incident_id).status == "closed")
        closed = Incidents(app.engine).get(screen.incident_id)
        assert (closed.resolution, closed.root_cause, closed.follow_ups) == ("resumed the cache", "pause left over",
                                                                              ["alert", "review"])
        # esc leaves; the walk stays, and i comes back to it
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        await pilot.press("7")
        await until(pilot, lambda: app.screen is screen)
        assert screen.walker is walker


async def test_backspace_goes_back_one_step(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app, screen, walker = await _walk_paused_cache_to_intentional(pilot, open_incident=True)
        await _pick(pilot, screen, "answer:no - resume it")
        await until(pilot, lambda: walker.node.id == "resume")
        await pilot.press("backspace")
        await until(pilot, lambda: walker.node.id == "intentional")
        assert "answer:no - resume it" in _options(screen)
        assert "went back to intentional" in screen.timeline_text
        await pilot.press("r")  # re-runs the pause check: still paused, back at the question
        await until(pilot, lambda: walker.node.id == "intentional" and not screen.busy
                    and [s.node for s in walker.history] == ["blocked"])


async def test_read_only_walks_but_cannot_perform(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.statuses) == 8)
        await pilot.pause(0.2)
        screen, walker = await _walk_on_cache(pilot, "pause-drain-resume")
        await until(pilot, lambda: walker is not None and not screen.busy)
        assert screen.incident_id is None  # nothing is recorded in read-only mode
        assert screen.check_action("perform", ()) is None
        # walk on through questions until an action shows up; it is listed but disabled
        for _ in range(10):
            if walker.node.kind == "action" or walker.finished:
                break
            options = [o for o in _options(screen) if o.startswith(("answer:", "ack", "advance"))]
            if not options:
                break
            await _pick(pilot, screen, options[0])
            await until(pilot, lambda: not screen.busy)
        assert walker.node.kind == "action", walker.breadcrumb()
        choices = screen.query_one("#inc-choices")
        perform = _options(screen).index("perform")
        assert choices.get_option_at_index(perform).disabled
        await pilot.press("enter")  # a disabled option does nothing
        screen._confirm_perform()  # nor does asking directly: no dialog, no change
        await pilot.pause()  # the key is handled; a dialog would have been pushed at once
        assert not isinstance(app.screen, ConfirmDialog)
        assert walker.node.kind == "action" and walker.status == "at-node"
        assert "disabled: read-only" in screen_text(app)
        assert "your move" in screen_text(app) and "at-node" not in screen_text(app)


async def test_swap_proposal_waits_for_approval_in_the_approvals_pane(make_app):
    """A tree's swap is a proposal: with approvals manual it waits; approving it in the
    Approvals pane applies it and the walk continues on the outcome."""
    from oneiric_tui.widgets.approvals import ApprovalsTable

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app = await ready(pilot)
        screen, walker = await _walk_on_cache(pilot, "proc-hot-swap")
        await until(pilot, lambda: walker.node.id == "swap" and not screen.busy)
        # the swap needs a target the walk does not have yet: the panel asks for it before
        # offering "Perform", naming what serves and what it can swap to
        assert _options(screen) == ["param:target"]
        await _pick(pilot, screen, "param:target")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog))
        prompt = screen_text(app)
        assert "serving now: memory" in prompt and "memory-large" in prompt and "redis" in prompt
        await _choose_param(pilot, "memory-large")
        await _pick(pilot, screen, "perform")
        await pilot.press("y")
        await answer_severity(pilot, screen)  # the swap is the walk's first change: it opens the incident
        await until(pilot, lambda: walker.status == "waiting")
        assert "waiting" in screen_text(app)
        # approve it where every proposal is approved
        await pilot.press("escape", "a")
        await until(pilot, lambda: app.main.query_one(ApprovalsTable).row_count == 1)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.statuses[app.engine.ref("adapter", "cache")].serving == "memory-large")
        await pilot.press("i")
        await until(pilot, lambda: app.screen is screen)
        await until(pilot, lambda: walker.status != "waiting" and not screen.busy and walker.node.id != "swap")
        assert walker.history[-1].node == "verify" or walker.node.id in ("resume", "persist", "done"), \
            walker.breadcrumb()
        swap_step = next(s for s in walker.history if s.node == "swap")
        assert swap_step.value == "applied" and swap_step.approved_by == "tester"


async def test_choice_label_follows_the_node_and_manual_steps_say_so(make_app):
    """Two actions in a row keep the same choice id: the label must still name the new one.
    A manual step is confirmed as done, not 'performed'."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app = await ready(pilot)
        screen, walker = await _walk_on_cache(pilot, "proc-maintenance-pause")
        await until(pilot, lambda: walker.node.id == "declare" and not screen.busy)  # no window is declared
        await _pick(pilot, screen, "answer:go on without one")
        await until(pilot, lambda: walker.node.id == "announce" and not screen.busy)
        choices = screen.query_one("#inc-choices")
        assert str(choices.get_option_at_index(0).prompt).startswith("Done: I did this step")
        await _pick(pilot, screen, "perform")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Is this step done?" in screen_text(app)
        await pilot.press("y")
        await answer_severity(pilot, screen)  # a manual step is a change made outside: it opens the incident
        await until(pilot, lambda: walker.node.id == "drain" and not screen.busy)
        await until(pilot, lambda: str(choices.get_option_at_index(0).prompt).startswith("Perform: drain"))
        assert "Outcome:" in screen_text(app) and "confirmed the step was done" in screen_text(app)


async def test_a_walk_left_by_a_console_that_quit_is_resumed_by_the_next_one(make_app):
    """A procedure step can restart the host the console runs in: the next console offers the
    open incident's walk and takes it up at the node where it was, its timeline intact."""
    first = make_app()
    async with first.run_test(size=(120, 40)) as pilot:
        _, screen, walker = await _walk_paused_cache_to_intentional(pilot, open_incident=True)
        incident = screen.incident_id
        steps_before = [(s.node, s.value) for s in walker.history]
    # the first console has quit (its engine stopped); the next one starts on the same state
    second = make_app()
    async with second.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: second.mode == "host" and len(second.statuses) == 8)  # cache stays paused
        screen = await _open_on_cache(pilot)
        assert f"resume:{incident}" in _options(screen)
        assert f"Resume incident #{incident}" in screen_text(second)
        await _pick(pilot, screen, f"resume:{incident}")
        walker = screen.walker
        await until(pilot, lambda: walker is not None and not screen.busy)
        assert screen.incident_id == incident and walker.node.id == "intentional"
        assert [(s.node, s.value) for s in walker.history] == steps_before
        entries = Incidents(second.engine).entries(incident)
        assert sum(1 for e in entries if "-> paused" in e.text) == 1  # not recorded twice
        assert any("walk resumed at intentional by tester" in e.text for e in entries)
        await _answer_resume_and_finish(pilot, screen)  # and it walks on from there
        await pilot.press("escape", "i")
        await until(pilot, lambda: second.screen is screen)
        await _pick(pilot, screen, "new")
        assert f"resume:{incident}" not in _options(screen)  # a finished walk is not offered again


async def test_a_walk_another_console_is_walking_is_not_taken_up(make_app):
    """Two consoles on one state directory: a saved walk whose walker (another live process of
    this machine) is still at it is listed with who walks it, and resuming it is refused in
    one sentence; once that process has gone, it can be taken up."""
    import socket
    import subprocess
    import sys

    first = make_app()
    async with first.run_test(size=(120, 40)) as pilot:
        _, screen, _ = await _walk_paused_cache_to_intentional(pilot, open_incident=True)
        incident = screen.incident_id
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        second = make_app()
        # another console (that process) walks it now
        second.engine.store.set_meta(f"incident-walker:{incident}", {
            "pid": other.pid, "hostname": socket.gethostname(), "actor": "alice", "at": 0.0})
        async with second.run_test(size=(120, 40), notifications=True) as pilot:
            await until(pilot, lambda: second.mode == "host" and len(second.statuses) == 8)
            screen = await _open_on_cache(pilot)
            assert f"walked now by alice (pid {other.pid}" in screen_text(second)
            await _pick(pilot, screen, f"resume:{incident}")
            await pilot.pause(0.2)
            assert screen.walker is None
            assert any("being walked now by alice" in n.message for n in second._notifications)
            other.kill()
            other.wait()
            await _pick(pilot, screen, f"resume:{incident}")  # that console is gone: take it up
            await until(pilot, lambda: screen.walker is not None and not screen.busy)
            assert screen.walker.node.id == "intentional"
            owner = Incidents(second.engine).walk_owner(incident)
            assert owner is not None and owner.actor == "tester"
    finally:
        other.kill()
        other.wait()


async def test_a_swap_target_is_picked_from_the_candidates_and_an_empty_answer_never_ends_the_walk(make_app):
    """proc-hot-swap asked for its target as free text, the candidates only in the placeholder,
    and an empty enter closed the prompt without a word; now the candidates are a list, typing
    is the last line, an empty box stays open, and esc says the walk still waits."""
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app = await ready(pilot)
        screen, walker = await _walk_on_cache(pilot, "proc-hot-swap")
        await until(pilot, lambda: walker.node.id == "swap" and not screen.busy)
        assert "Swap adapter/cache to the target provider (not chosen yet)" in screen_text(app)
        await _pick(pilot, screen, "param:target")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog))
        values = _param_values(app)
        assert "memory" not in values and {"memory-large", "redis"} <= set(values)  # what serves is left out
        options = app.screen.query_one("#param-list")
        assert str(options.get_option_at_index(options.option_count - 1).prompt) == \
            "Type a provider that is not listed..."
        await pilot.press("G", "enter")  # the last line: type one
        await until(pilot, lambda: app.screen.focused is app.screen.query_one("#param-input"))
        await pilot.press("enter")  # nothing typed
        await until(pilot, lambda: "Nothing typed: type the target, or esc to cancel." in screen_text(app))
        assert isinstance(app.screen, ParamDialog)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await until(pilot, lambda: "Nothing was set: the walk waits at 'swap' for 'target'." in
                    [n.message for n in app._notifications])
        assert not walker.finished and walker.node.id == "swap" and "target" not in walker.params
        assert _options(screen) == ["param:target"]
        await _pick(pilot, screen, "param:target")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog))
        await _choose_param(pilot, "redis")
        await until(pilot, lambda: walker.params.get("target") == "redis" and not screen.busy)
        assert _options(screen) == ["perform"]
        assert "Swap adapter/cache to redis: a proposal." in screen_text(app)


async def test_a_key_that_does_not_exist_can_be_typed(make_app):
    """Component not found is walked for a key that is not there; the walk always took the key
    highlighted in the main view. The picker's last line names another component: its domain
    from a list, its key from the domain's keys or typed, and the walk takes that one."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app = await ready(pilot)
        screen = await _open_on_cache(pilot)
        assert _options(screen)[-1] == "pick-ref"
        choices = screen.query_one("#inc-choices")
        assert str(choices.get_option_at_index(choices.option_count - 1).prompt) == \
            "Walk for another component than adapter/cache (a key that need not exist)..."
        await _pick(pilot, screen, "pick-ref")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog))
        assert _param_values(app) == ["adapter", "service", "task", "event", "workflow", "action"]
        await _choose_param(pilot, "adapter")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog) and app.screen.asked.name == "key")
        assert "cache" in _param_values(app)
        await pilot.press("G", "enter", *"ghost", "enter")
        await until(pilot, lambda: app.screen is screen and str(screen.ref) == "adapter/ghost")
        await _pick(pilot, screen, "tree:component-not-found")
        walker = screen.walker
        await until(pilot, lambda: walker is not None and walker.history and not screen.busy)
        assert walker.params["key"] == "ghost"
        assert (walker.history[0].node, walker.history[0].value) == ("blocked", "not-found")


async def test_the_walks_swap_proposal_is_approved_inline_through_the_approval_path(make_app):
    """The walk's own proposal is decided in the walk: 'Approve proposal #N here' sends the
    command the Approvals pane sends (the journal says who approved), and the walk goes on."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app = await ready(pilot)
        screen, walker = await _walk_on_cache(pilot, "proc-hot-swap")
        await until(pilot, lambda: walker.node.id == "swap" and not screen.busy)
        await _pick(pilot, screen, "param:target")
        await until(pilot, lambda: isinstance(app.screen, ParamDialog))
        await _choose_param(pilot, "memory-large")
        await _pick(pilot, screen, "perform")
        await pilot.press("y")
        await answer_severity(pilot, screen)
        await until(pilot, lambda: walker.status == "waiting")
        proposal = walker.pending.proposal_id
        await until(pilot, lambda: f"approve:{proposal}" in _options(screen))
        assert _options(screen) == [f"approve:{proposal}", f"reject:{proposal}", "wait"]
        await _pick(pilot, screen, f"approve:{proposal}")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert f"Approve proposal #{proposal}?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: walker.status != "waiting" and not screen.busy, timeout=30)
        assert app.screen is screen  # never sent to the Approvals pane
        swap_step = next(s for s in walker.history if s.node == "swap")
        assert swap_step.value == "applied" and swap_step.approved_by == "tester"
        assert app.engine.journal(kinds=["swap-approved"])
