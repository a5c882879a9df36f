"""`/` filters every list pane, not only the log (issue 15 point 2): a box scoped to the focused
pane, rows without every word hidden, the words in the pane's border, esc clears."""

from __future__ import annotations

from oneiric_tui.pane_filter import PaneFilterBox, row_matches
from oneiric_tui.widgets.approvals import ApprovalsTable
from oneiric_tui.widgets.component_tree import ComponentTree
from oneiric_tui.widgets.health_table import HealthTable
from tests.tui.conftest import ready, until
from tests.tui.test_console import DEMO_KEYS, screen_text


def test_a_row_is_kept_when_every_word_is_in_its_text_ignoring_case():
    assert row_matches("", ["anything"])
    assert row_matches("CACHE mem", ["adapter/cache", "memory", "+ OK"])
    assert not row_matches("cache redis", ["adapter/cache", "memory"])
    assert row_matches("ok", ["+ OK"])


async def filter_with(pilot, pane_key: str, words: str) -> None:
    await pilot.press(pane_key, "slash")
    await until(pilot, lambda: isinstance(pilot.app.focused, PaneFilterBox))
    await pilot.press(*("slash" if c == "/" else c for c in words))
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(pilot.app.focused, PaneFilterBox))
    await pilot.pause(0.1)


def shown_keys(app) -> set[str]:
    """The component keys the tree shows now (its key nodes, domains aside)."""
    tree = app.main.query_one(ComponentTree)
    return {str(node.data.ref) for domain in tree.root.children for node in domain.children
            if node.data is not None and node.data.ref is not None}


async def test_slash_in_the_tree_keeps_the_matching_keys_and_esc_brings_back_every_one(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert shown_keys(app) == DEMO_KEYS
        await filter_with(pilot, "1", "runner")
        assert shown_keys(app) == {"task/runner", "workflow/runner"}
        assert "filter: runner" in screen_text(app)
        assert app.main.query_one(ComponentTree).has_focus
        # the pane's words by name: domain/key finds one key
        await filter_with(pilot, "1", "adapter/cache")
        assert shown_keys(app) == {"adapter/cache"}
        await pilot.press("escape")  # esc in the filtered pane
        await until(pilot, lambda: shown_keys(app) == DEMO_KEYS)
        assert "filter:" not in screen_text(app)


async def test_slash_in_health_hides_the_rows_without_the_words(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        health = app.main.query_one(HealthTable)
        every = set(health.text_lines()[1:])
        await filter_with(pilot, "3", "runner")
        rows = health.text_lines()[1:]
        assert [row.split()[0] for row in rows] == ["task/runner", "workflow/runner"]
        assert "filter: runner" in screen_text(app)
        # esc in the box clears the words
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, PaneFilterBox) and app.focused.value == "runner")
        await pilot.press("escape")
        await until(pilot, lambda: len(health.text_lines()) - 1 == len(every))
        assert health.has_focus


async def test_slash_in_approvals_filters_the_proposals_and_keeps_new_ones_out(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await app.engine.request_swap("adapter", "cache", "sqlite", actor="alice", source="cli")
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)
        await filter_with(pilot, "5", "bob")
        assert approvals.row_count == 0 and "filter: bob" in screen_text(app)
        await filter_with(pilot, "5", "ALICE")
        assert approvals.row_count == 1 and "memory -> sqlite" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: approvals.filter_text == "" and approvals.row_count == 1)


async def test_slash_in_a_pane_without_rows_says_so(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        await pilot.press("2", "slash")
        await until(pilot, lambda: any(n.message.startswith("Explain has no rows to filter")
                                       for n in app._notifications))
        assert not isinstance(app.focused, PaneFilterBox)


async def test_slash_in_remote_filters_the_sources_even_zoomed(tmp_path):
    """The demo's signed file source in pane 6, zoomed with z: the box shows over the zoomed
    pane and its words hide the sources without them."""
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.widgets.remote_table import RemoteTable
    from tests.helpers import DEMO, FAST_APP, demo_copy

    settings = demo_copy(tmp_path, fast=False)
    remote = (DEMO / "app.yml").read_text().split("\nremote:", 1)[1]
    (settings / "app.yml").write_text(FAST_APP + "remote:" + remote)
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        table = app.main.query_one(RemoteTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("6", "z")
        await until(pilot, lambda: app.main.maximized is table)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.focused, PaneFilterBox))
        assert "filter Remote: words found in a row" in screen_text(app)  # seen while zoomed
        await pilot.press(*"nosuch", "enter")
        await until(pilot, lambda: table.row_count == 0 and table.filter_text == "nosuch")
        await filter_with(pilot, "6", "DEMO")
        assert table.row_count == 1 and "filter: DEMO" in screen_text(app)


async def test_a_key_that_comes_to_match_while_filtered_appears(make_app):
    from oneiric_tui.screens.confirm import ConfirmDialog
    from tests.tui.test_command_line import type_command

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await filter_with(pilot, "1", "paused")
        assert shown_keys(app) == set()
        await type_command(pilot, "pause task/runner")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: shown_keys(app) == {"task/runner"})
        assert "filter: paused" in screen_text(app)


async def test_slash_in_the_runbook_picker_narrows_the_runbooks_and_esc_brings_them_back(make_app):
    from oneiric_tui.screens.incident import IncidentScreen
    from tests.tui.test_incidents_panel import _open_on_cache, _options

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await _open_on_cache(pilot)
        await until(pilot, lambda: any(o.startswith("tree:") for o in _options(screen)))
        every = [o for o in _options(screen) if o.startswith("tree:")]
        assert len(every) > 10
        await pilot.press("slash", *"remote", "enter")
        await until(pilot, lambda: [o for o in _options(screen) if o.startswith("tree:")] == ["tree:remote-sync"])
        assert "pick-ref" in _options(screen)  # a key that does not exist can still be walked
        assert str(screen.query_one("#inc-choices").border_subtitle) == "filter: remote"
        await pilot.press("escape")  # clears the filter first; a second esc leaves the panel
        await until(pilot, lambda: [o for o in _options(screen) if o.startswith("tree:")] == every)
        assert isinstance(app.screen, IncidentScreen)
