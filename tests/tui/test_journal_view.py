"""The swap log pane shows changes only, the full journal (`L`) shows everything with follow,
wrap, a jump to a time and a copy of the line under the cursor (OSC 52), and notifications
stay (`N`) (issue 15 points 5 and 6). Pilot over the real app on a copy of the demo."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time

from oneiric_core.events import Event
from oneiric_core.runbooks.incidents import Incidents
from oneiric_tui.screens.journal import JournalScreen
from oneiric_tui.screens.notices import NoticesScreen
from oneiric_tui.widgets.journal_lines import JournalLines
from oneiric_tui.widgets.swap_log import SwapLog
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text


def pane_text(app) -> str:
    return "\n".join(app.main.query_one(SwapLog).lines.text_lines())


async def test_the_swap_log_pane_shows_changes_and_leaves_incidents_to_their_views(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        Incidents(app.engine).open("cache answers slowly", "P2")
        await app.act("pause", domain="adapter", key="cache")
        await until(pilot, lambda: "activity-changed" in pane_text(app))
        assert "incident-opened" not in pane_text(app)
        assert not any(e.kind.startswith("incident-") for e in app.main.query_one(SwapLog).visible_events())
        # ... and the full journal has both
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        lines = app.screen.query_one(JournalLines)
        await until(pilot, lambda: any(e.kind == "incident-opened" for e in lines.events))
        shown = screen_text(app)
        assert "incident-opened" in shown and "cache answers slowly" in shown


async def test_the_journal_follows_wraps_jumps_and_copies_with_osc52(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await ready(pilot)
        written: list[str] = []
        driver = app._driver
        original = driver.write

        def record(data: str) -> None:  # what goes to the terminal (Textual's driver)
            written.append(data)
            original(data)

        driver.write = record  # type: ignore[method-assign]
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        screen = app.screen
        lines = screen.query_one(JournalLines)
        assert lines.follow and lines.cursor == len(lines) - 1
        # Columns sized to their content: a long kind widens its column for every line.
        long_kind = "signature-verification-failed"
        app.engine.emit(Event(long_kind, "manifest acme: no trusted signature"))
        await until(pilot, lambda: lines.events and lines.events[-1].kind == long_kind)
        assert lines.columns.kind == len(long_kind)
        kind_at = len("HH:MM:SS x info  ")
        for entry in list(lines._entries)[-5:]:  # every line's kind column is as wide as the longest kind
            assert entry.plain[kind_at:kind_at + len(long_kind) + 1].rstrip() == entry.event.kind, entry.plain
            assert entry.plain[kind_at + len(long_kind)] == " "
        # Follow: the cursor stays on the newest as events arrive; F stops it.
        await pilot.press("F")
        assert not lines.follow and "follow off" in screen_text(app)
        at = lines.cursor
        app.engine.emit(Event("config-changed", "adapters.yml edited"))
        await until(pilot, lambda: lines.events[-1].kind == "config-changed")
        assert lines.cursor == at
        await pilot.press("F")
        assert lines.follow and lines.cursor == len(lines) - 1
        # Wrap: a long message folds into several rows, or keeps to one.
        app.engine.emit(Event("swap-failed", "the provider said: " + "x " * 120))
        await until(pilot, lambda: lines.events[-1].kind == "swap-failed")
        folded = lines.screen_rows
        await pilot.press("w")
        assert lines.screen_rows < folded and lines.screen_rows == len(lines)
        assert "wrap off" in screen_text(app)
        # y copies the line under the cursor through OSC 52, and says so.
        await pilot.press("up", "y")  # the arrows move the cursor line, not only the view
        assert not lines.follow
        copied = lines.cursor_text()
        assert "adapters.yml edited" in copied
        assert f"\x1b]52;c;{base64.b64encode(copied.encode()).decode()}\a" in written
        toasts = [n.message for n in app._notifications]
        assert any(m.startswith("Copied event #") and "to the clipboard (OSC 52):" in m and "adapters.yml" in m
                   for m in toasts), toasts


async def test_log_at_a_time_puts_the_cursor_on_the_first_event_from_then(make_app):
    now = time.time() + 3 * 3600  # the console's clock, three hours on: the events below are in its past
    app = make_app(clock=lambda: now)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        base = now - 2 * 3600
        for minutes, text in ((0, "two hours ago"), (30, "an hour and a half ago"), (60, "an hour ago")):
            app.engine.emit(Event("config-changed", text, ts=base + minutes * 60))
        await pilot.pause(0.2)
        target = time.strftime("%H:%M", time.localtime(base + 20 * 60))
        await pilot.press("colon")
        for ch in f"log at {target}":
            await pilot.press({" ": "space", ":": "colon"}.get(ch, ch))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        lines = app.screen.query_one(JournalLines)
        await until(pilot, lambda: lines.cursor_event is not None
                    and lines.cursor_event.message == "an hour and a half ago")
        assert not lines.follow
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, JournalScreen))
        app.main.run_command("log at 25:00")
        await pilot.pause(0.1)
        toasts = [n.message for n in app._notifications]
        assert any(m.startswith("'25:00' is not a time of day") for m in toasts), toasts


async def test_a_proposal_from_the_cli_rings_toasts_and_stays_in_the_list(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        rang: list[bool] = []
        app.bell = lambda: rang.append(True)  # type: ignore[method-assign]  # headless Textual rings nothing
        env = {**os.environ, "ONEIRIC_OPERATOR": "alice"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oneiric_core.cli", "--settings", str(app.engine.settings_dir),
            "--state-dir", str(app.engine.state_dir), "swap", "--domain", "adapter", "--key", "cache",
            "--provider", "sqlite", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        await until(pilot, lambda: len(app.notices) == 1)
        assert rang
        assert any("-> sqlite" in n.message and n.title.startswith("Proposal #") for n in app._notifications)
        # The console's own swap is not news.
        await app.act("swap", domain="adapter", key="storage", provider="local", source="console")
        Incidents(app.engine).open("opened by me", "P3")
        app.engine.emit(Event("config-changed", "sentinel: the events before it were read"))
        await until(pilot, lambda: "sentinel" in pane_text(app))
        assert len(app.notices) == 1
        # An incident a colleague opens is.
        Incidents(app.engine).open("redis down", "P2", commander="bob")
        await until(pilot, lambda: len(app.notices) == 2)
        await pilot.press("N")
        await until(pilot, lambda: isinstance(app.screen, NoticesScreen))
        shown = screen_text(app)
        when = time.strftime("%H:%M", time.localtime(app.notices[0].ts))
        assert "Incident #" in shown and "redis down" in shown and "-> sqlite" in shown and when in shown
        assert shown.index("redis down") < shown.index("-> sqlite")  # newest first


async def test_a_client_console_is_told_of_a_proposal_made_at_the_host(make_app):
    """Client mode: events reach the console from the store (follow_store), not the bus; a
    proposal made through the CLI still rings and is listed."""
    from tests.tui.test_safe_keys import start_oneiric_run

    app = make_app()
    host = start_oneiric_run(app.engine.settings_dir, app.engine.state_dir)
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(pilot, lambda: app.mode == "client", timeout=20)
            assert not app.notices  # what was journaled before this console came is history, not news
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "oneiric_core.cli", "--settings", str(app.engine.settings_dir),
                "--state-dir", str(app.engine.state_dir), "swap", "--domain", "adapter", "--key", "cache",
                "--provider", "sqlite", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            await until(pilot, lambda: len(app.notices) == 1, timeout=15)
            await pilot.press("N")
            await until(pilot, lambda: isinstance(app.screen, NoticesScreen))
            assert "-> sqlite" in screen_text(app) and "1 this session" in screen_text(app)
    finally:
        host.terminate()
        host.wait(timeout=30)


async def test_colon_opens_the_command_line_in_the_journal_view(make_app):
    """`:` works over the full-screen journal as on the main view (issue 15 point 2): `:log
    FILTER` filters this view, a command that needs the main view goes back and runs there,
    and a wrong line gets its one sentence."""
    from oneiric_tui.command_line import CommandLine
    from oneiric_tui.screens.confirm import ConfirmDialog

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        journal = app.screen
        box = journal.query_one("#journal-command", CommandLine)
        await pilot.press("colon")
        await until(pilot, lambda: box.display and app.focused is box)
        for char in "log kind:swap-complete":
            await pilot.press({" ": "space", ":": "colon", "-": "minus"}.get(char, char))
        await pilot.press("enter")
        await until(pilot, lambda: journal.filter.describe() == "kind:swap-complete")
        assert not box.display and app.screen is journal
        assert journal.visible_events() and all(e.kind == "swap-complete" for e in journal.visible_events())
        # esc closes the line and stays in the journal
        await pilot.press("colon")
        await until(pilot, lambda: box.display)
        await pilot.press("escape")
        await until(pilot, lambda: not box.display)
        assert app.screen is journal
        # a wrong command: one sentence, still here
        await pilot.press("colon", "z", "z", "enter")
        await until(pilot, lambda: any(n.message.startswith("No command ':zz'") for n in app._notifications))
        assert app.screen is journal
        # a command on a key: back to the main view, where it asks as `p` would
        await pilot.press("colon")
        await until(pilot, lambda: box.display)
        for char in "pause task/runner":
            await pilot.press({" ": "space", "/": "slash"}.get(char, char))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: any(str(r) == "task/runner" and s.activity == "paused"
                                       for r, s in app.statuses.items()))
