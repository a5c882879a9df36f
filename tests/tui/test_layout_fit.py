"""The main screen's panes sized to what they hold (issue 15 point 3), measured on the real
app at 120x40: the small panes show all they hold without a scrollbar, Explain shows its
ranked table and the last swap's total without scrolling, and long texts are cut with an
ellipsis so the columns after them stay aligned."""

from __future__ import annotations

import time

from textual.widget import Widget

from oneiric_core.domains import Domain
from oneiric_core.events import Event, Severity
from oneiric_tui.widgets.approvals import ApprovalsTable
from oneiric_tui.widgets.detail import DetailPane
from oneiric_tui.widgets.event_lines import EventLines
from oneiric_tui.widgets.remote_table import RemoteTable
from oneiric_tui.widgets.swap_log import SwapLog
from tests.tui.conftest import ready, until
from tests.tui.test_console import detail_text, screen_text, to_cache


def drawn(app, pane: Widget) -> str:
    """The screen's characters inside `pane`'s region, its lines joined."""
    r = pane.region
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    return "\n".join(line[r.x:r.right] for line in lines[r.y:r.bottom])


def fits(pane: Widget) -> bool:
    """Everything the pane holds is in sight: nothing to scroll, either way."""
    return pane.max_scroll_y == 0 and pane.max_scroll_x == 0


async def test_at_120x40_each_pane_shows_all_it_holds(tmp_path):
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from tests.helpers import DEMO, FAST_APP, demo_copy

    settings = demo_copy(tmp_path, fast=False)  # with the demo's remote source
    remote = (DEMO / "app.yml").read_text().split("\nremote:", 1)[1]
    (settings / "app.yml").write_text(FAST_APP + "remote:" + remote)
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        main = app.main
        remote, approvals = main.query_one(RemoteTable), main.query_one(ApprovalsTable)
        await until(pilot, lambda: remote.row_count == 1)  # the demo's one manifest source
        await pilot.pause(0.1)
        health = main.query_one("#health")
        # Health: its eight rows and every column, no scrollbar.
        assert health.row_count == 8 and fits(health)
        assert health.region.height == 8 + 1 + 2  # rows, header, border
        assert "CHANGED" in screen_text(app)
        # Empty Approvals keeps its header line only; Remote its one row, whole.
        assert approvals.row_count == 0 and approvals.region.height == 3
        assert remote.region.height == 4 and fits(remote)
        # The log across the bottom keeps its share: at least 8 lines in sight.
        assert main.query_one("#log").region.height >= 10
        # Every pane is on screen, none overlapping another.
        regions = [main.query_one(f"#{name}").region for name in ("tree", "detail", "health", "log", "approvals",
                                                                   "remote")]
        assert all(r.height > 0 for r in regions)
        assert not any(a.overlaps(b) for i, a in enumerate(regions) for b in regions[i + 1:])


async def test_at_120x40_explain_shows_the_ranked_table_and_the_total_without_scrolling(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await to_cache(pilot)
        detail = app.main.query_one(DetailPane)
        await pilot.pause(0.1)
        assert detail.max_scroll_y == 0  # all of it in sight
        shown = screen_text(app)
        for provider in ("memory (builtin)", "memory-large (settings)", "redis (builtin)", "sqlite (builtin)"):
            assert provider in shown  # adapter/cache's four candidates, on screen
        assert "total " in shown and "candidate, in rank order" in shown
        assert "selected in" in detail_text(app)


async def test_a_long_kind_is_cut_and_the_log_columns_stay_aligned(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.main.query_one(SwapLog).add([
            Event("signature-verification-failed", "manifest demo: bad signature", Severity.ERROR, ts=time.time()),
            Event("config-changed", "settings reloaded", ts=time.time())])
        lines = app.main.query_one("#log-lines", EventLines)
        await until(pilot, lambda: any("settings reloaded" in line for line in lines.text_lines()))
        text = lines.text_lines()
        [cut] = [line for line in text if "manifest demo: bad signature" in line]
        [whole] = [line for line in text if "settings reloaded" in line]
        assert "signature-verif…" in cut and "signature-verification-failed" not in cut
        assert len("signature-verif…") == 16  # the width of the kind column
        # what follows the kind starts in the same column on both lines
        assert cut.index("manifest demo") == whole.index("settings reloaded")


async def test_a_long_proposal_is_cut_with_an_ellipsis_and_its_row_fits_the_pane(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        reason = "the memory cache lost every entry at 03:12 and redis is what the runbook says to use now"
        await app.engine.request_swap(Domain.ADAPTER, "cache", "redis", reason=reason,
                                      actor="a-very-long-operator-name")
        app.refresh_approvals()
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)
        await pilot.pause(0.1)
        assert fits(approvals)  # no scrollbar: the row is in sight whole
        assert approvals.region.height == 4  # header and the one row
        shown = drawn(app, approvals)
        assert reason not in shown and reason[:14] in shown and "…" in shown
        assert "a-very-long…" in shown
        # zoomed, the reason has the room the wider pane leaves
        await pilot.press("5", "z")
        await until(pilot, lambda: app.main.maximized is approvals and reason[:50] in drawn(app, approvals))
        assert fits(approvals)
