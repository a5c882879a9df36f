"""The console's upkeep view (issue 16 point 2, issue 17 point 3), driven with Pilot over a real
engine on a copy of the demo: upstream Oneiric settings nothing reads are said in the header
and the settings area, never called valid; the maintenance calendar's due count is in the
header (which keeps the pending count at 80 columns), its list is on `m` and in the palette,
and a task marked done from the console is journaled with the operator and its due date
moves on."""

from __future__ import annotations

import time

import pytest

from oneiric_core.maintenance import DAY, Calendar
from oneiric_tui.screens.upkeep import DoneDialog, TaskTable, UpkeepScreen
from tests.tui.conftest import until
from tests.tui.test_safe_text import drawn

UPSTREAM = "adapters:\n  selections:\n    cache: sqlite\n"


def header(app) -> str:
    return drawn(app.main.query_one("#status-bar"))


def settings_area(app) -> str:
    return drawn(app.get_screen("upkeep").query_one("#up-settings"))


def late(app) -> int:
    return len(Calendar(app.engine).due())


async def started(pilot):
    app = pilot.app
    await until(pilot, lambda: app.mode == "host" and app.upkeep is not None)
    await pilot.pause(0.1)
    return app


async def open_upkeep(pilot) -> UpkeepScreen:
    await pilot.press("m")
    await until(pilot, lambda: isinstance(pilot.app.screen, UpkeepScreen))
    return pilot.app.screen


async def highlight(pilot, screen: UpkeepScreen, task_id: str) -> None:
    table = screen.query_one(TaskTable)
    await until(pilot, lambda: task_id in table._rows)
    while screen.selected() is None or screen.selected().task.id != task_id:
        row = list(table._rows).index(task_id)
        await pilot.press("j" if table.cursor_row < row else "k")


def done_events(app) -> list:
    return app.engine.journal(kinds=["maintenance-done"])


# -- settings not read (issue 16 point 2) ----------------------------------------------------------


async def test_an_upstream_file_is_said_in_the_header_and_the_settings_area(make_app, tmp_path) -> None:
    (tmp_path / "settings" / "oneiric.yaml").write_text(UPSTREAM)
    app = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await started(pilot)
        assert "upstream Oneiric settings NOT READ (m)" in header(app)
        screen = await open_upkeep(pilot)
        shown = settings_area(app)
        assert "NOT READ:" in shown and "oneiric.yaml is an upstream Oneiric settings file" in shown
        assert "'oneiric config import' writes its equivalent" in shown
        assert "valid" not in shown and "in force" not in shown
        assert "1 NOT READ" in drawn(screen.query_one("#up-head"))


async def test_oneiric_config_is_said_too(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_CONFIG", "/etc/oneiric/prod.yaml")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        assert "NOT READ" in header(app)
        await open_upkeep(pilot)
        assert "ONEIRIC_CONFIG=/etc/oneiric/prod.yaml names an upstream Oneiric settings file" in settings_area(app)


async def test_without_upstream_settings_nothing_is_marked(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEIRIC_CONFIG", raising=False)
    monkeypatch.delenv("ONEIRIC_STACK_ORDER", raising=False)
    app = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await started(pilot)
        assert "NOT READ" not in header(app)
        await open_upkeep(pilot)
        assert "NOT READ" not in settings_area(app)
        assert "no upstream Oneiric settings file or variable is in sight" in settings_area(app)


async def test_at_80_columns_the_header_keeps_the_pending_count(make_app, tmp_path) -> None:
    (tmp_path / "settings" / "local.yaml").write_text(UPSTREAM)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        line = header(app)
        assert "0 pending" in line and f"{late(app)} due" in line and "NOT READ" in line, line
        assert len(line) <= 78, line  # one line, nothing cut at the edge
        await pilot.resize_terminal(200, 40)
        await until(pilot, lambda: "operator tester" in header(app) and "upstream Oneiric settings NOT READ"
                    in header(app))


# -- the maintenance calendar (issue 17 point 3) ---------------------------------------------------


async def test_the_header_counts_what_is_due_and_overdue(make_app) -> None:
    app = make_app()
    calendar = Calendar(app.engine)
    calendar.mark_done("review-logs-metrics", actor="carol", at=time.time() - 9 * DAY)  # weekly: overdue
    calendar.mark_done("security-updates", actor="carol")  # monthly, done now: not due
    due = late(app)
    assert due == len(calendar.tasks) - 1
    async with app.run_test(size=(200, 40)) as pilot:
        await started(pilot)
        assert f"maintenance {due} due (1 overdue) (m)" in header(app)
        screen = await open_upkeep(pilot)
        table = screen.query_one(TaskTable)
        assert list(table._rows)[0] == "review-logs-metrics"  # the most urgent first
        assert list(table._rows)[-1] == "security-updates"
        shown = drawn(table)
        assert "OVERDUE review-logs-metrics weekly" in shown and "carol" in shown
        assert f"{due - 1} due" in drawn(screen.query_one("#up-head"))


async def test_marking_a_task_done_is_journaled_and_its_due_date_moves_on(make_app) -> None:
    app = make_app()
    due = late(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        assert f"{due} due" in header(app)
        screen = await open_upkeep(pilot)
        await highlight(pilot, screen, "review-logs-metrics")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, DoneDialog))
        await pilot.press(*"no anomalies", "enter")  # enter hands focus to Cancel; it never confirms
        assert isinstance(app.screen, DoneDialog) and not done_events(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, UpkeepScreen) and bool(done_events(app)))
        [event] = done_events(app)
        assert event.actor == "tester" and event.data["task"] == "review-logs-metrics"
        assert event.data["note"] == "no anomalies"
        state = next(s for s in Calendar(app.engine).states() if s.task.id == "review-logs-metrics")
        assert state.last_done_by == "tester" and state.last_note == "no anomalies"
        assert state.due_at > time.time() + 6 * DAY and state.status(time.time()) == "ok"
        await until(pilot, lambda: list(screen.query_one(TaskTable)._rows)[-1] == "review-logs-metrics")
        assert "ok review-logs-metrics weekly" in drawn(screen.query_one(TaskTable))
        await pilot.press("escape")
        await until(pilot, lambda: f"{due - 1} due" in header(app))


async def test_cancelling_the_dialog_records_nothing(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await open_upkeep(pilot)
        # n in the note box is a letter of the note; out of it, n cancels. enter: note -> Cancel -> cancels.
        for keys in (("x", "escape"), ("x", "n", "tab", "n"), ("x", "enter", "enter")):
            await pilot.press(keys[0])
            await until(pilot, lambda: isinstance(app.screen, DoneDialog))
            await pilot.press(*keys[1:])
            await until(pilot, lambda: isinstance(app.screen, UpkeepScreen))
        assert not done_events(app)


async def test_the_palette_opens_the_list_and_marks_a_due_task_done(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"mark done: security")
        await until(pilot, lambda: "Mark done: security-updates" in drawn(app.screen))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DoneDialog))
        assert app.screen.state.task.id == "security-updates"
        await pilot.press("tab", "y")  # tab: from the note box to Cancel; y marks it done
        await until(pilot, lambda: bool(done_events(app)))
        assert isinstance(app.screen, UpkeepScreen)
        assert done_events(app)[0].data["task"] == "security-updates"


async def test_read_only_says_why_and_records_nothing(make_app) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.upkeep is not None)
        screen = await open_upkeep(pilot)
        await until(pilot, lambda: screen.selected() is not None)
        await pilot.press("x")
        await until(pilot, lambda: any("read-only: x would mark" in n.message for n in app._notifications))
        assert not isinstance(app.screen, DoneDialog) and not done_events(app)
        commands = [c.title for c in app.get_system_commands(screen)]
        assert not any(t.startswith("Mark done") for t in commands)
        assert any(t.startswith("Upkeep:") for t in commands)
