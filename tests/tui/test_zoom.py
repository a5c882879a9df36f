"""`z` zooms the active pane full-screen and back (issue 15 point 3). Pilot over the real
app on a copy of the demo."""

from __future__ import annotations

from tests.tui.conftest import ready, until


async def test_z_zooms_the_active_pane_and_back(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("3")  # the health pane
        health = app.screen.query_one("#health")
        await pilot.press("z")
        await until(pilot, lambda: app.screen.maximized is health)
        assert health.region.height >= 30  # the whole screen but the header and key bar
        assert not app.screen.query_one("#tree").region.height  # the other panes are hidden
        await pilot.press("z")
        await until(pilot, lambda: app.screen.maximized is None)
        await until(pilot, lambda: app.screen.query_one("#tree").region.height > 0)
        assert health.region.height < 30


async def test_z_zooms_every_pane_the_containers_too(make_app):
    """Explain and the swap log are containers, which Textual does not maximize by default:
    `z` zooms them like the others, each to the whole screen."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for key, name in (("1", "tree"), ("2", "detail"), ("3", "health"), ("4", "log"), ("5", "approvals"),
                          ("6", "remote")):
            await pilot.press(key)
            pane = app.screen.query_one(f"#{name}")
            await pilot.press("z")
            await until(pilot, lambda pane=pane: app.screen.maximized is pane)
            await until(pilot, lambda pane=pane: pane.region.height >= 36)  # all but the header and key bar
            await pilot.press("z")
            await until(pilot, lambda: app.screen.maximized is None)
