"""The command palette is built from the `:` command table (issue 15 points 2 and 7): every
command is found by its name in ctrl+p, global ones included, and an entry does what its
command line does (the same dialog, the same change)."""

from __future__ import annotations

from textual.command import Command, CommandList, CommandPalette
from textual.fuzzy import Matcher
from textual.widgets import Input

from oneiric_tui.command_line import SPECS
from oneiric_tui.palette import palette_entries
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.journal import JournalScreen
from oneiric_tui.widgets.swap_log import SwapLog
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text


async def search(pilot, query: str) -> None:
    """Open the palette and type `query` into it."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    names = {" ": "space", "/": "slash", ":": "colon", "-": "minus"}
    await pilot.press(names.get(query[0], query[0]))  # typed: the palette's own input takes it
    # the rest as one edit: a search per keystroke over every entry made each query seconds long
    box = pilot.app.screen.query_one(Input)
    box.value = query
    box.cursor_position = len(query)
    await pilot.pause(0.3)


def listed(app) -> list[str]:
    """The titles the open palette lists, as the operator reads them."""
    commands = app.screen.query_one(CommandList)
    return [option.hit.text or "" for option in commands.options if isinstance(option, Command)]


async def close_palette(pilot) -> None:
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette))


async def test_every_command_of_the_table_is_found_in_the_palette_by_its_name(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        record, _ = await app.engine.request_swap("adapter", "cache", "sqlite", actor="alice", source="cli")
        await until(pilot, lambda: "1 pending" in screen_text(app))
        entries = list(palette_entries(app.main.vocabulary()))
        # What ctrl+p searches: the app's system commands, matched as Textual's palette matches
        # them (typing each name into the real palette took two minutes; one is typed below).
        offered = [command.title for command in app.get_system_commands(app.main)]
        for spec in SPECS:
            titles = [e.title for e in entries if e.line.split()[0] == spec.name]
            assert titles, f":{spec.name} has no palette entry"
            assert any(t in offered and Matcher(spec.name).match(t) > 0 for t in titles), (
                f":{spec.name}: the palette offers none of {titles} for '{spec.name}'")
        await search(pilot, "incidents")
        await until(pilot, lambda: "Incidents" in listed(app))
        await close_palette(pilot)
        # the global commands the palette lacked, by what they say
        titles = {e.title for e in entries}
        for title in ("Incidents", "Incident panel", f"Approve #{record.id} adapter/cache memory -> sqlite "
                      "(asked by alice)", "Runbook component-not-found", "Theme", "Theme: textual-light",
                      "Help: keys", "Quit", "Explain adapter/cache", "Log: kind:swap-rollback"):
            assert title in titles, title


async def test_an_entry_does_what_its_command_line_does(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        # Pause task/runner: the same question as `:pause task/runner`, then the change
        await search(pilot, "pause task/runner")
        await until(pilot, lambda: listed(app)[:1] == ["Pause task/runner"])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: any(str(r) == "task/runner" and s.activity == "paused"
                                       for r, s in app.statuses.items()))
        # a log filter, as `:log kind:swap-rollback`
        await search(pilot, "log: kind:swap-rollback")
        await until(pilot, lambda: listed(app)[:1] == ["Log: kind:swap-rollback"])
        await pilot.press("enter")
        await until(pilot, lambda: app.main.query_one(SwapLog).filter.describe() == "kind:swap-rollback")
        assert "filter: kind:swap-rollback" in screen_text(app)
        # a theme by name, as `:theme textual-light`
        await search(pilot, "theme: textual-light")
        await until(pilot, lambda: listed(app)[:1] == ["Theme: textual-light"])
        await pilot.press("enter")
        await until(pilot, lambda: app.theme == "textual-light")


async def test_read_only_and_other_screens_list_only_what_can_run_there(make_app):
    app = make_app(read_only=True, read_only_reason="this console was started with --read-only")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert "Probe adapter/cache" in titles and "Explain adapter/cache" in titles  # change nothing
        assert not any(t.startswith(("Pause ", "Swap adapter", "Drain ", "Resume ")) for t in titles)
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, JournalScreen))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Help: keys", "Theme", "Quit", "Incidents", "Journal"):
            assert title in titles, title
        assert not any(t.startswith(("Probe ", "Explain ")) for t in titles)  # they need the main view
        await search(pilot, "help")
        await until(pilot, lambda: listed(app)[:1] == ["Help: keys"])
        await pilot.press("enter")
        await until(pilot, lambda: "Help: keys by task" in screen_text(app))
