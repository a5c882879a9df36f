"""The console's Approvals pane over a fleet store (issue 18 point 5): every node's pending
proposals with a NODE column, and `y` on one of another node's sends the approval through the
store to that node's host, which swaps there. Real hosts (`oneiric run --node`) on a real
PostgreSQL; the console is a host of its own node."""

from __future__ import annotations

import json
from pathlib import Path

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.widgets.approvals import ApprovalsTable
from tests.helpers import wait_until
from tests.test_fleet_requests import fleet  # noqa: F401 - the fixture: hosts web-1 and web-2
from tests.test_nodes import oneiric
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text


def _serving(settings: Path, cli: Path, node: str) -> str | None:
    res = oneiric(settings, cli, "status", f"{node}:cache", "--json")
    assert res.returncode == 0, res.stderr
    (cache,) = json.loads(res.stdout)["components"]
    return cache["serving"]


async def test_the_pane_lists_every_nodes_proposals_and_y_approves_one_on_its_node(
        tmp_path: Path, fleet) -> None:  # noqa: F811 - the fixture
    settings, _url = fleet
    cli = tmp_path / "cli"
    res = oneiric(settings, cli, "--node", "ops", "swap", "web-2:cache", "--provider", "sqlite", "--json")
    assert res.returncode == 0, res.stderr
    proposal = json.loads(res.stdout)["proposal"]["id"]

    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        approvals = app.main.query_one(ApprovalsTable)
        await until(pilot, lambda: approvals.row_count == 1)
        assert [str(c.label) for c in approvals.columns.values()] == ["NODE", "#", "COMPONENT", "FROM -> TO",
                                                                      "ASKED BY", "WHEN", "WHY"]
        assert [str(cell) for cell in approvals.get_row_at(0)[:3]] == ["web-2", f"#{proposal}", "adapter/cache"]

        # a proposal made on another node after the console started shows too
        res = oneiric(settings, cli, "--node", "ops", "swap", "web-1:cache", "--provider", "redis")
        assert res.returncode == 0, res.stderr
        await until(pilot, lambda: approvals.row_count == 2)

        await pilot.press("a")
        assert app.main.active_pane() == "approvals"
        approvals.move_cursor(row=0)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert f"Approve proposal #{proposal}?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: approvals.row_count == 1, timeout=20)
        assert [str(cell) for cell in approvals.get_row_at(0)[:1]] == ["web-1"]
        # the toast names the node the swap ran on
        await until(pilot, lambda: any(n.message == "adapter/cache on node web-2 now served by sqlite."
                                       for n in app._notifications), timeout=20)
        assert all(s.serving != "sqlite" for s in app.statuses.values())  # this node swapped nothing
    wait_until(what="web-2 to report sqlite", timeout=20, poll=0.2,
               predicate=lambda: _serving(settings, cli, "web-2") == "sqlite")
    assert _serving(settings, cli, "web-1") == "memory"
    events = json.loads(oneiric(settings, cli, "journal", "--json", "--kind", "swap-approved").stdout)["events"]
    assert [(e["node"], e["data"]["proposal"]) for e in events] == [("web-2", proposal)]
