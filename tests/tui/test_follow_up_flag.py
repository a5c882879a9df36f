"""The runbook picker flags a runbook with open post-mortem follow-ups (issue 17 point 4), as
`oneiric runbook list` does, until the tree's `reviewed` date moves past the incident. Pilot
over a real engine and a real incident store on a copy of the demo."""

from __future__ import annotations

import datetime
import re

from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.runbooks.upkeep import FollowUp
from oneiric_tui.screens.incident import IncidentScreen
from oneiric_tui.widgets.follow_ups import flag, follow_up_text
from tests.tui.conftest import until
from tests.tui.test_safe_text import drawn

FOLLOW_UP = "update hot-swap-failed with the redis case"


def _labels(screen: IncidentScreen) -> dict[str, str]:
    choices = screen.query_one("#inc-choices")
    return {o.id or "": str(o.prompt) for o in (choices.get_option_at_index(i) for i in range(choices.option_count))}


async def _picker(pilot) -> IncidentScreen:
    app = pilot.app
    await until(pilot, lambda: app.mode == "host")
    await pilot.press("i")
    await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and "tree:hot-swap-failed" in _labels(app.screen))
    return app.screen


def _close_with_follow_up(app) -> int:
    incidents = Incidents(app.engine)
    inc = incidents.open("redis rollbacks", "P2")
    incidents.close(inc.id, "memory again", follow_ups=[FOLLOW_UP])
    return inc.id


async def test_the_picker_flags_a_runbook_with_an_open_follow_up(make_app) -> None:
    app = make_app()
    incident = _close_with_follow_up(app)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _picker(pilot)
        labels = _labels(screen)
        assert labels["tree:hot-swap-failed"].endswith(f"FOLLOW-UP from #{incident}")
        assert "FOLLOW-UP" not in labels["tree:proc-hot-swap"]  # a whole id only
        choices = screen.query_one("#inc-choices")
        choices.highlighted = list(labels).index("tree:hot-swap-failed")
        await until(pilot, lambda: FOLLOW_UP in drawn(screen.query_one("#inc-node")))
        summary = drawn(screen.query_one("#inc-node"))
        assert f"#{incident} redis rollbacks: {FOLLOW_UP}" in summary
        assert "move its `reviewed` date past the incident" in summary


async def test_a_review_after_the_incident_clears_the_flag(make_app, tmp_path) -> None:
    app = make_app()
    _close_with_follow_up(app)
    tree = tmp_path / "settings" / "runbooks" / "hot-swap-failed.yml"
    today = datetime.date.today().isoformat()
    tree.write_text(re.sub(r"^reviewed: .*$", f"reviewed: {today}", tree.read_text(), count=1, flags=re.M))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _picker(pilot)
        assert not any("FOLLOW-UP" in label for label in _labels(screen).values())


def test_many_follow_ups_keep_the_line_short() -> None:
    many = [FollowUp(i, f"incident {i}", 0.0, "update hot-swap-failed") for i in range(1, 9)]
    assert flag(many) == "  FOLLOW-UP from #1, #2, #3 +5 more"
    assert "... and 3 more (oneiric runbook show)" in follow_up_text(many).plain
    assert flag([]) == "" and follow_up_text([]).plain == ""
