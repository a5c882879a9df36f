"""The console on a game day: `oneiric runbook drill ID --interactive --console`.

The console is the ordinary one, started as the host of the game day's throw-away copy
(oneiric_core.runbooks.game_day). Once it hosts, the drill's running faults go in, the
incident panel opens and the drill's runbook is walked on the drill's component. The panel
hands each step to the game day (its `during:` faults, the second person deciding proposals)
and shows the score when the walk ends; quitting the console ends the game day, and the CLI
prints the score.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import on, work

from oneiric_core.engine import Engine
from oneiric_core.errors import OneiricError
from oneiric_core.runbooks.faults import DRILL_ACTOR
from oneiric_core.runbooks.game_day import GameDay

from .app import OneiricApp
from .messages import EngineReady
from .mode import ConsoleMode


class GameDayApp(OneiricApp):
    def __init__(self, engine: Engine, game_day: GameDay, **options: Any) -> None:
        super().__init__(engine, **options)
        self.game_day = game_day
        self._begun = False

    @on(EngineReady)
    def _game_day_ready(self, message: EngineReady) -> None:
        if message.mode == ConsoleMode.HOST and not self._begun:
            self._begun = True
            self._begin_game_day()

    @work(group="game-day", exit_on_error=False)
    async def _begin_game_day(self) -> None:
        day = self.game_day
        try:
            await day.host_started(self.engine)
        except OneiricError as exc:
            self.notify(f"The game day's fault could not be injected: {exc}", severity="error", markup=False)
            return
        self.notify(day.intro(), title="Game day", markup=False, timeout=15)
        self.main.action_incident()
        screen = self.get_screen("incident")
        screen.game_day = day  # type: ignore[attr-defined]
        screen.call_later(screen.start_runbook, day.tree.id)  # type: ignore[attr-defined]  # once it is shown
        self.refresh_all()


    async def on_unmount(self) -> None:
        await self.game_day.stop()


def run_game_day(settings_dir: Any, tree_id: str, drill_id: str | None) -> GameDay:
    """Prepare the game day, run the console on it until the operator quits, clean up.
    Returns the game day: its `scored` says how the walk ended."""
    day = asyncio.run(GameDay.prepare(settings_dir, tree_id, drill_id))
    try:
        engine = Engine(day.settings_dir, state_dir=day.state_dir, actor=DRILL_ACTOR)
        GameDayApp(engine, day).run()
    finally:
        day.remove()
    return day
