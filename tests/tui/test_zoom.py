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
