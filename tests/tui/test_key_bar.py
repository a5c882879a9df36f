"""The key bar at the bottom of the console (oneiric_tui/widgets/key_bar.py), driven with Pilot."""

from __future__ import annotations

from oneiric_tui.main_screen import MainScreen
from oneiric_tui.screens.help import HelpScreen
from oneiric_tui.screens.swap_picker import SwapPicker
from oneiric_tui.widgets.key_bar import KeyBar
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text, to_cache


def bottom_line(app) -> str:
    """The key bar's line as it is drawn (its width is the terminal's)."""
    bar = app.screen.query_one(KeyBar)
    assert bar.region.y == app.size.height - 1 and bar.region.width == app.size.width
    return bar.render().plain


def entry_span(bar: KeyBar, description: str) -> tuple[int, object]:
    """(column, style) of `description` on the rendered bar."""
    text = bar.render()
    start = text.plain.index(description)
    styles = [span.style for span in text.spans if span.start <= start < span.end]
    return start, styles[-1]


async def test_the_bar_shows_the_focused_panes_keys_and_follows_focus(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        line = bottom_line(app)
        for words in ("s Swap", "p Pause", "d Drain", "r Resume", "h Probe", "i Incident", "? Help", "q Quit"):
            assert words in line
        assert line.rstrip().endswith("^p palette") and len(line) == 120
        assert "Swap" in screen_text(app) and "palette" in screen_text(app)
        assert "Approve" not in line and "Filter" not in line
        await pilot.press("5")  # the approvals pane adds its own keys
        await until(pilot, lambda: "y Approve" in bottom_line(app) and "n Reject" in bottom_line(app))
        await pilot.press("4")
        await until(pilot, lambda: "/ Filter" in bottom_line(app) and "Approve" not in bottom_line(app))


async def test_at_80_columns_every_key_still_fits(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        line = bottom_line(app)
        assert "q Quit" in line and line.rstrip().endswith("^p palette") and "…" not in line and "..." not in line
        # a pane with keys of its own: they stay, and so do help and quit; the last globals go
        await pilot.press("6")
        await until(pilot, lambda: "S Sync now" in bottom_line(app))
        line = bottom_line(app)
        assert len(line) == 80 and "? Help q Quit" in line and line.rstrip().endswith("^p palette")
        assert "... ? Help" in line and "i Incident" not in line and "s Swap" in line


async def test_read_only_dims_the_mutating_keys_and_a_click_on_one_says_why(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        bar = app.main.query_one(KeyBar)
        column, swap_style = entry_span(bar, "Swap")
        _, help_style = entry_span(bar, "Help")
        assert swap_style.dim and not help_style.dim
        await pilot.click(KeyBar, offset=(column, 0))
        await until(pilot, lambda: any(n.message == "read-only: s would open the swap picker for adapter/cache."
                                       for n in app._notifications))
        assert isinstance(app.screen, MainScreen)  # no swap picker
        column, _ = entry_span(bar, "Help")
        await pilot.click(KeyBar, offset=(column, 0))
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_a_click_on_a_key_presses_it(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        bar = app.main.query_one(KeyBar)
        column, style = entry_span(bar, "Swap")
        assert not style.dim
        await pilot.click(KeyBar, offset=(column, 0))
        await until(pilot, lambda: isinstance(app.screen, SwapPicker))


async def test_keys_are_named_in_ascii_where_textual_draws_symbols(make_app):
    """backspace and enter read as words: their symbols are missing from many terminal fonts."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("i")
        await until(pilot, lambda: app.screen.query(KeyBar) and "Step back" in bottom_line(app))
        line = bottom_line(app)
        assert "bksp Step back" in line and line.isascii(), line
