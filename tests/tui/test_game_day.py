"""A game day in the console (`oneiric runbook drill ID --interactive --console`): the drill's
fault is injected into a throw-away copy the console hosts, the operator walks the runbook in
the incident panel, and the exit reached is scored. Pilot, over a real engine."""

from __future__ import annotations

from oneiric_core.engine import Engine
from oneiric_core.runbooks.faults import DRILL_ACTOR
from oneiric_core.runbooks.game_day import GameDay
from oneiric_tui.game_day import GameDayApp
from oneiric_tui.screens.incident import IncidentScreen
from tests.helpers import demo_copy
from tests.tui.conftest import until
from tests.tui.test_console import screen_text
from tests.tui.test_incidents_panel import _answer_resume_and_finish, _options, _pick


async def _game_day(tmp_path, drill: str) -> tuple[GameDay, GameDayApp]:
    settings = demo_copy(tmp_path)
    day = await GameDay.prepare(settings, "component-not-found", drill)
    engine = Engine(day.settings_dir, state_dir=day.state_dir, actor=DRILL_ACTOR)
    return day, GameDayApp(engine, day)


async def _walk_to_the_question(pilot, app: GameDayApp) -> IncidentScreen:
    await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and app.screen.walker is not None, timeout=30)
    screen = app.screen
    await until(pilot, lambda: screen.walker.node.id == "intentional" and not screen.busy)
    return screen


async def test_a_game_day_in_the_console_injects_the_fault_and_scores_the_exit_reached(tmp_path):
    day, app = await _game_day(tmp_path, "paused-key-resumed")
    mine = tmp_path / "settings"  # the operator's own settings: only read (copied)
    before = {p.name: p.read_text() for p in mine.glob("*.yml")}
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            screen = await _walk_to_the_question(pilot, app)
            walker = screen.walker
            assert walker.tree.id == "component-not-found" and walker.params == {"domain": "adapter", "key": "cache"}
            assert walker.history[0].value == "paused"  # the injected fault, found by the first check
            assert "Game day: drill 'paused-key-resumed'" in screen_text(app)
            assert app.engine.settings_dir == day.settings_dir != mine
            await _answer_resume_and_finish(pilot, screen)
            await until(pilot, lambda: day.scored is not None)
            assert day.scored == (True, "Score: PASS. You reached component-not-found:done, the exit this drill "
                                        "expects (A paused key looks like a lookup failure; the walk finds the "
                                        "pause and resumes it.).")
            await until(pilot, lambda: "Score: PASS" in screen_text(app))
            assert _options(screen) == ["new"]
    finally:
        day.remove()
    assert not day.root.exists()
    assert {p.name: p.read_text() for p in mine.glob("*.yml")} == before
    assert not (tmp_path / "state").exists()


async def test_a_game_day_that_ends_elsewhere_is_a_miss(tmp_path):
    day, app = await _game_day(tmp_path, "paused-key-resumed")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _walk_to_the_question(pilot, app)
            await _pick(pilot, screen, "answer:yes - leave it")
            await until(pilot, lambda: screen.walker.node.kind == "done" and not screen.busy)
            await _pick(pilot, screen, "ack")
            await until(pilot, lambda: day.scored is not None)
            assert day.scored[0] is False
            assert day.scored[1].startswith("Score: MISS. You reached component-not-found:done-blocked; the drill "
                                            "expects component-not-found:done.")
    finally:
        day.remove()
