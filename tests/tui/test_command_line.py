"""The `:` command line, driven as an operator types it: words become the same dialogs and
actions as the keys, tab completes, a wrong line is answered in one sentence and changes
nothing, and read-only refuses what would change."""

from __future__ import annotations

from oneiric_tui.command_line import CommandLine, Vocabulary, complete, parse
from oneiric_tui.screens.approval_dialog import ApprovalDialog
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.widgets.swap_log import SwapLog
from tests.tui.conftest import ready, until


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


async def type_command(pilot, line: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: isinstance(pilot.app.focused, CommandLine))
    for char in line:
        await pilot.press("space" if char == " " else char)
    await pilot.press("enter")
    await pilot.pause(0.2)


async def test_swap_key_provider_opens_the_approval_dialog_for_that_provider(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "swap cache sqlite")
        await until(pilot, lambda: isinstance(app.screen, ApprovalDialog))
        assert app.screen.to_provider == "sqlite" and app.screen.ref_label == "adapter/cache"
        await pilot.press("n")  # cancelled: nothing swapped
        await until(pilot, lambda: not isinstance(app.screen, ApprovalDialog))
        assert app.statuses[app.main.current].serving == "memory"


async def test_a_wrong_line_is_one_sentence_and_changes_nothing(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "swop cache")
        assert any(m.startswith("No command ':swop' (did you mean :swap?)") for m in messages(app))
        await type_command(pilot, "pause nosuch")
        assert "No component 'nosuch': type a key the tree shows (tab completes)." in messages(app)
        await type_command(pilot, "swap cache nosuch")
        assert any("has no candidate 'nosuch'" in m for m in messages(app))
        await type_command(pilot, "approve 99")
        assert any("No pending proposal #99" in m for m in messages(app))
        assert not isinstance(app.screen, ConfirmDialog)
        assert all(s.activity == "active" for s in app.statuses.values())


async def test_pause_asks_first_and_log_filters_the_swap_log(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "pause task/runner")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: any(str(r) == "task/runner" and s.activity == "paused"
                                       for r, s in app.statuses.items()))
        await type_command(pilot, "log kind:activity-changed")
        log = app.main.query_one(SwapLog)
        assert log.filter.active and all(e.kind == "activity-changed" for e in log.visible_events())


async def test_tab_completes_the_word_and_esc_closes_the_box(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.focused, CommandLine))
        for char in "sw":
            await pilot.press(char)
        box = app.focused
        await until(pilot, lambda: box._suggestion == "swap")
        await pilot.press("tab")
        assert box.value == "swap "
        await pilot.press("escape")
        await until(pilot, lambda: not box.display)
        assert not isinstance(app.focused, CommandLine)


async def test_read_only_refuses_a_change_in_one_sentence(make_app):
    app = make_app(read_only=True, read_only_reason="started with --read-only")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.statuses) == 8)
        await type_command(pilot, "pause cache")
        assert any(m.startswith("read-only: :pause would pause adapter/cache") for m in messages(app))
        assert not isinstance(app.screen, ConfirmDialog)


def test_completion_offers_commands_keys_and_a_keys_providers():
    vocabulary = Vocabulary(keys=["adapter/cache", "service/cache", "task/runner"],
                            providers=lambda ref: ["memory", "redis"] if ref == "adapter/cache" else [])
    assert complete("pa", vocabulary) == ["pause"]
    assert complete("pause ru", vocabulary) == ["pause runner"]
    assert complete("swap adapter/cache r", vocabulary) == ["swap adapter/cache redis"]
    assert parse("approve x") == ":approve takes a number, not 'x': :approve N"
    assert parse("q").name == "quit"


async def test_runbook_and_incident_commands_open_the_walk_or_say_what_is_missing(make_app):
    from oneiric_tui.screens.incident import IncidentScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "runbook nosuch")
        assert any(m.startswith("No runbook 'nosuch'") for m in messages(app))
        app.pop_screen()
        await type_command(pilot, "incident 99")
        assert "No open incident #99 (I lists them)." in messages(app)
        app.pop_screen()
        await type_command(pilot, "runbook component-not-found")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and app.screen.walker is not None)
        assert app.screen.walker.tree.id == "component-not-found"
