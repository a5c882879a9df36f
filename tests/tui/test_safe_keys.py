"""Safe keys and help that teaches (issue 15 points 1 and 7): `q` as host asks, as client it
does not; a key typed after a text box lost focus never acts; `h` probes without a dialog;
disabled keys say why; the help is grouped by task with real reasons; the palette carries
the console's global commands. Pilot over the real app on a copy of the demo; the host in
client mode is a real `oneiric run` process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from textual.widgets import Input

from oneiric_core.engine import Engine
from oneiric_core.store import StateStore
from oneiric_tui.main_screen import MainScreen
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.help import HelpScreen, help_sections
from oneiric_tui.screens.incident import IncidentScreen
from oneiric_tui.widgets.swap_log import SwapLog
from tests.helpers import REPO
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text, to_cache

QUIT_BODY = "Stops 8 providers; `oneiric run` keeps them running without a console."


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


async def handled(pilot) -> None:
    """A barrier for a negative check: everything the app was asked to do so far has run to
    its end. The app runs its callbacks one after another, each to completion (a shutdown
    scheduled by a dialog's answer included), so when one queued now runs, the ones queued
    before it are done. An app that exits meanwhile never runs it: that fails here."""
    await pilot.pause()
    done = asyncio.Event()
    pilot.app.call_later(done.set)
    await asyncio.wait_for(done.wait(), 10)


# -- q ------------------------------------------------------------------------------------


async def test_q_as_host_asks_what_stops_and_cancelling_keeps_the_host(make_app):
    app = make_app()
    state = app.engine.state_dir
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        text = screen_text(app)
        assert "Quit and stop this host?" in text and QUIT_BODY in text
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await handled(pilot)  # a quit the answer began would be over by now; the host must be whole
        assert app.return_code is None and app.engine.started and app.engine.running_providers() == 8
        lease, alive = app.engine.host()
        assert alive and lease is not None and lease.pid == os.getpid()
        # asked again, and confirmed: the host stops and lets go of the state directory
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.engine.started is False)
    assert app.return_code == 0
    store = StateStore(state / "state.sqlite")
    try:
        assert store.current_lease() is None
        assert store.journal(limit=1)[-1].kind == "host-stopped"
    finally:
        store.close()


def start_oneiric_run(settings, state) -> subprocess.Popen:
    """`oneiric run` in its own process: the headless host a console attaches to."""
    host = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                             "--state-dir", str(state), "run"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    probe = Engine(settings, state_dir=state, actor="probe")
    try:
        deadline = time.monotonic() + 30
        while True:
            lease, alive = probe.host()
            if alive and lease is not None and lease.pid == host.pid:
                return host
            if host.poll() is not None or time.monotonic() > deadline:
                host.kill()
                raise AssertionError(f"oneiric run did not start: {host.stderr.read().decode()}")
            time.sleep(0.1)
    finally:
        probe.close()


async def test_q_as_client_quits_at_once_and_the_host_keeps_running(make_app):
    """Pins that the host's question never reaches a client (whose q already quit at once):
    quitting a client stops nothing, so it asks nothing."""
    app = make_app()
    host = start_oneiric_run(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.mode == "client", timeout=20)
            await until(pilot, lambda: f"CLIENT attached to pid {host.pid}" in screen_text(app))
            await pilot.press("q")
            await until(pilot, lambda: app.return_code is not None or isinstance(app.screen, ConfirmDialog))
            assert not isinstance(app.screen, ConfirmDialog)
        assert app.return_code == 0
        assert host.poll() is None  # the host runs on
        check = Engine(app.engine.settings_dir, state_dir=app.engine.state_dir, actor="check")
        try:
            lease, alive = check.host()
            assert alive and lease is not None and lease.pid == host.pid
        finally:
            check.close()
    finally:
        host.terminate()
        host.wait(timeout=30)


# -- keys typed after a text box lost focus -----------------------------------------------


async def test_typing_on_after_a_click_took_the_focus_from_the_filter_goes_into_it(make_app):
    """The reported case: `sqlite` typed into the log filter after a click (one meant to
    focus the terminal window) moved the focus away; the `q` quit the console."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("4", "slash", "s")
        log = app.main.query_one(SwapLog)
        box = log.query_one("#log-filter", Input)
        await until(pilot, lambda: box.value == "s")
        await pilot.click("#tree")
        await until(pilot, lambda: app.focused is not box)
        await pilot.press(*"qlite")
        await until(pilot, lambda: box.value == "sqlite")
        assert app.focused is box
        assert isinstance(app.screen, MainScreen) and app.return_code is None and app.engine.started
        await pilot.press("enter")  # leaving it with a key is deliberate: the next key is a command
        await until(pilot, lambda: log.filter.describe() == "sqlite" and not box.display)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen))


async def test_a_key_typed_as_a_dialog_opens_over_a_text_box_is_dropped(make_app):
    """A dialog that comes up while the operator types (it takes the focus without a key)
    must not take the next letter as its answer."""
    app = make_app()
    answers: list[bool | None] = []
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("4", "slash", *"redis")
        box = app.main.query_one("#log-filter", Input)
        await until(pilot, lambda: box.value == "redis")
        app.push_screen(ConfirmDialog("Drain adapter/cache?", "A dialog opening on its own.", "Drain"),
                        answers.append)
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")  # typed on, as the dialog came up
        await until(pilot, lambda: any(m.startswith("Ignored 'y'") for m in messages(app)))
        assert isinstance(app.screen, ConfirmDialog) and answers == []
        await pilot.pause(1.2)  # paces the scenario on the clock: the guard's window (GRACE_S) passes
        await pilot.press("y")
        await until(pilot, lambda: answers == [True])


# -- h, and keys that are disabled ---------------------------------------------------------


async def test_read_only_keys_flash_what_they_would_have_done(make_app):
    app = make_app(read_only=True, read_only_reason="this console was started with --read-only")
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        before = app.engine.store.last_journal_id()
        await pilot.press("p")
        await until(pilot, lambda: "read-only: p would pause adapter/cache (this console was started with "
                    "--read-only)." in messages(app))
        await pilot.press("6", "S")
        await until(pilot, lambda: any(m.startswith("read-only: S would sync every remote source")
                                       for m in messages(app)))
        assert isinstance(app.screen, MainScreen)
        assert app.engine.journal(after_id=before) == []
        # the help says the same beside each key it disables
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = {key: rest for s in help_sections(app, app.main) for key, *rest in s.keys}
        assert rows["p"][1:] == ["read-only (this console was started with --read-only)"]
        assert rows["h"][1:] == []  # a probe changes nothing: not disabled


async def test_a_key_disabled_for_another_reason_says_that_reason(make_app):
    """No host runs and this console may not become one: `h` has nobody to probe with."""
    app = make_app(may_host=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: app.mode == "waiting")
        await pilot.pause(0.2)
        await pilot.press("h")
        await until(pilot, lambda: "No host runs for this state directory: probe is refused until one does."
                    in messages(app))
        # the help gives the same reason beside the key, never "read-only"
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        assert "disabled: no host runs for this state directory yet" in text
        assert "read-only" not in text


# -- help and palette ----------------------------------------------------------------------


async def test_help_is_grouped_by_task_without_widget_internals(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        sections = help_sections(app)
        titles = [s.title for s in sections]
        assert titles[:2] == ["Move around", "Look, without changing anything"]
        assert "The console" in titles
        rows = {key: text for s in sections for key, text, *_ in s.keys}
        # every pane's own keys, wherever the focus is (here: the tree), with their pane
        assert rows["/"].startswith("Filter the focused list") and rows["S"].endswith("(in 6 Remote)")
        assert rows["^p"].startswith("Command palette")
        assert rows["h"].startswith("Probe")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for internal in ("Cursor to parent", "shift+left", "Toggle", "Scroll Left", "Copy selected text"):
            assert internal not in text, internal


async def test_the_palette_approves_a_pending_proposal_and_has_the_global_commands(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        record, _ = await app.engine.request_swap("adapter", "cache", "sqlite", actor="alice", source="cli")
        await until(pilot, lambda: "1 pending" in screen_text(app))
        titles = [c.title for c in app.get_system_commands(app.main)]
        for title in ("Incidents", "Help: keys", "Theme", "Quit"):
            assert title in titles, title
        await pilot.press("ctrl+p")
        await pilot.press(*"approve")
        await until(pilot, lambda: f"Approve #{record.id} adapter/cache memory -> sqlite" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert f"Approve proposal #{record.id}?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: any(str(s.ref) == "adapter/cache" and s.serving == "sqlite"
                                       for s in app.statuses.values()))
        assert app.engine.journal(kinds=["swap-approved"])
        # the palette's Quit asks as q does
        await pilot.press("ctrl+p")
        await pilot.press(*"quit")
        await until(pilot, lambda: "Quit the console" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and "Quit and stop this host?"
                    in screen_text(app))


async def test_a_command_typed_fast_after_the_colon_goes_into_the_command_line(make_app):
    """`:help` and enter arriving in one burst (a fast typist, a paste over SSH): the keys
    after `:` reach the command line, not the bindings (`e` would open the edit dialog, `q`
    would quit), and the command runs."""
    from textual import events

    from oneiric_tui.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for key, char in [("colon", ":"), ("h", "h"), ("e", "e"), ("l", "l"), ("p", "p"), ("enter", "\r")]:
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert [type(s).__name__ for s in app.screen_stack] == ["MainScreen", "HelpScreen"]
