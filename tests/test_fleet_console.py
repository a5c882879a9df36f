"""The console over a fleet store (issue 18 point 5): it says which node it shows, its panes are
that node's while the journal view is every node's (with a NODE column and a `node:` filter),
and `enter` on a node of `:fleet` (or `:node NAME`) opens that node's panes: the console starts
again as a client of that node's host. Pilot against a real PostgreSQL store, and the real
console in tmux against two real `oneiric run --node` hosts."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric_core.domains import Domain
from oneiric_core.engine import Engine
from oneiric_core.events import Event, Severity
from oneiric_core.store import StateStore
from oneiric_tui.app import OneiricApp
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.fleet import FleetScreen
from oneiric_tui.widgets.swap_log import SwapLog
from tests import test_fleet_requests, test_fleet_view
from tests.helpers import REPO, demo_copy
from tests.tui.conftest import ready, until
from tests.tui.test_command_line import type_command
from tests.tui.test_console import screen_text

fleet = test_fleet_requests.fleet  # two real hosts, web-1 and web-2, on a fresh schema
fleet_store = test_fleet_view.fleet_store  # two nodes' rows, written as their hosts write them


def header(app: OneiricApp) -> str:
    """The header line as the terminal shows it (the SVG export's text runs together)."""
    return next(line for line in screen_text(app).splitlines() if "Oneiric" in line and "pending" in line)


def event_on(url: str, tmp: Path, node: str, message: str) -> None:
    store = StateStore(tmp / f"writer-{node}" / "state.sqlite", url=url, node=node)
    try:
        store.append(Event("swap-complete", message, Severity.INFO, domain=Domain.ADAPTER, key="cache",
                           provider="sqlite", actor="someone"))
    finally:
        store.close()


async def test_enter_on_a_node_asks_the_host_then_leaves_for_that_nodes_panes(tmp_path: Path, fleet_store) -> None:
    settings, _url = fleet_store
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert re.search(r"HOST\s*node ops", header(app)), header(app)
        await type_command(pilot, "fleet")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen) and app.screen.fleet is not None)
        nodes = app.screen.query_one("#fleet-nodes")
        assert [str(nodes.get_row(n)[0]) for n in ("ops", "web-1", "web-2")] == ["* ops", "  web-1", "  web-2"]
        nodes.focus()
        await pilot.press("down", "down", "enter")  # web-2
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        text = screen_text(app)
        assert "Open node web-2?" in text and "This console hosts node ops here" in text, text
        await pilot.press("n")  # cancelled: nothing moves
        await until(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert app.switch_node is None and app.is_host
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, timeout=20)
    assert app.switch_node == "web-2"


async def test_node_command_names_the_nodes_when_the_name_is_wrong(tmp_path: Path, fleet_store) -> None:
    settings, _url = fleet_store
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "node web-9")
        await until(pilot, lambda: any("No node 'web-9'" in n.message for n in app._notifications))
        said = next(n.message for n in app._notifications if "web-9" in n.message)
        assert said == "No node 'web-9' on this store; the nodes are ops, web-1, web-2 (:fleet shows them)."
        await type_command(pilot, "node ops")  # its own node: the main screen, nothing restarts
        assert app.is_running and app.switch_node is None


async def test_node_command_on_one_hosts_store_is_one_sentence(tmp_path: Path) -> None:
    app = OneiricApp(Engine(demo_copy(tmp_path / "demo"), state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert "node" not in header(app)  # one host's store: no node in the header
        await type_command(pilot, "node web-2")
        await until(pilot, lambda: any(":node needs a fleet store" in n.message for n in app._notifications))
        assert app.is_running and app.switch_node is None


async def test_a_client_of_a_node_shows_its_events_and_the_journal_view_every_nodes(tmp_path: Path,
                                                                                   fleet_store) -> None:
    settings, url = fleet_store
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="web-2"),
                     may_host=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.mode == "client")
        assert re.search(r"CLIENT\s*node web-2", header(app)), header(app)
        event_on(url, tmp_path, "web-1", "cache moved on web-1")
        event_on(url, tmp_path, "web-2", "cache moved on web-2")
        log = app.main.query_one(SwapLog)
        await until(pilot, lambda: any("moved on web-2" in e.message for e in log.visible_events()), timeout=15)
        assert not any("moved on web-1" in e.message for e in log.visible_events())
        await type_command(pilot, "journal")
        await until(pilot, lambda: type(app.screen).__name__ == "JournalScreen")
        lines = app.screen.query_one("#journal-lines")
        await until(pilot, lambda: any("moved on web-1" in line for line in lines.text_lines()))
        row = next(line for line in lines.text_lines() if "moved on web-1" in line)
        assert " web-1 " in row and "swap-complete" in row, row
        box = app.screen.query_one("#journal-filter")
        box.focus()
        box.value = "node:web-1"
        await pilot.press("enter")
        await until(pilot, lambda: all("web-1" in line for line in lines.text_lines()) and lines.text_lines())
        assert not any("moved on web-2" in line for line in lines.text_lines())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_real_console_opens_another_nodes_panes_and_comes_back(tmp_path: Path, fleet) -> None:
    """In a terminal: `:fleet`, `enter` on web-2 (this console hosts nothing: it is a client of
    web-1's host), web-2's panes as its client; `:node web-1` goes back; `q` leaves (exit 0)."""
    from tests.tui.test_tmux import capture, new_session, wait_for

    settings, _url = fleet
    done = tmp_path / "exit-code"
    console = shlex.join([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                          str(tmp_path / "console"), "--node", "web-1", "console"])
    session = f"oneiric-fleet-{tmp_path.name}"[:50]
    new_session(session, f"cd {shlex.quote(str(REPO))} && {console}; echo $? > {shlex.quote(str(done))}")

    def keys(*typed: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, *typed], check=True)

    try:
        assert wait_for(lambda: "CLIENT node web-1 " in capture(session), 60), capture(session)
        keys(":")
        time.sleep(0.3)  # the box opens on the next frame; keys typed before it are queued for it anyway
        keys("fleet", "Enter")
        assert wait_for(lambda: "* web-1" in capture(session) and "  web-2" in capture(session)), capture(session)
        keys("Down", "Enter")  # web-2: a client opens it at once
        assert wait_for(lambda: "CLIENT node web-2 " in capture(session), 60), capture(session)
        assert wait_for(lambda: "cache  memory  + OK" in capture(session)), capture(session)
        keys(":")  # act on the node shown: its host runs elsewhere, the request goes through the store
        time.sleep(0.3)
        keys("pause cache", "Enter")
        assert wait_for(lambda: "Pause adapter/cache?" in capture(session)), capture(session)
        keys("y")
        assert wait_for(lambda: "Paused adapter/cache" in capture(session), 30), capture(session)
        assert test_fleet_requests.activity(settings, tmp_path / "cli", "web-2")["activity"][0]["state"] == "paused"
        keys(":")
        time.sleep(0.3)
        keys("node web-1", "Enter")
        assert wait_for(lambda: "CLIENT node web-1 " in capture(session), 60), capture(session)
        keys("q")
        assert wait_for(done.exists, 30), capture(session)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def open_incident_on(settings: Path, tmp: Path, node: str, title: str) -> int:
    from oneiric_core.runbooks.incidents import Incidents

    engine = Engine(settings, state_dir=tmp / f"incidents-{node}", actor="tester", node=node)
    try:
        return Incidents(engine).open(title, "P2").id
    finally:
        engine.close()


async def test_incidents_are_every_nodes_with_the_node_each_was_opened_on(tmp_path: Path, fleet_store,
                                                                         run_cli) -> None:
    from oneiric_tui.screens.incidents_view import IncidentsScreen

    settings, _url = fleet_store
    first = open_incident_on(settings, tmp_path, "web-1", "cache slow on web-1")
    second = open_incident_on(settings, tmp_path, "web-2", "cache down on web-2")
    listed = run_cli("incident", "list", settings=settings, state_dir=tmp_path / "cli").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [[f"#{second}", "web-2"], [f"#{first}", "web-1"]], listed
    only = run_cli("incident", "list", "--from", "web-1", "--json", settings=settings, state_dir=tmp_path / "cli")
    assert [(i["id"], i["node"]) for i in only.json()["incidents"]] == [(first, "web-1")]

    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "incidents")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen) and len(app.screen.rows) == 2)
        table = app.screen.query_one("#incidents-table")
        assert [str(c.label) for c in table.columns.values()][:2] == ["#", "node"]
        assert str(table.get_row(str(second))[1]) == "web-2" and str(table.get_row(str(first))[1]) == "web-1"


async def test_one_hosts_incidents_view_has_no_node_column(tmp_path: Path) -> None:
    from oneiric_tui.screens.incidents_view import IncidentsScreen

    settings = demo_copy(tmp_path / "demo")
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "state", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "incidents")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        table = app.screen.query_one("#incidents-table")
        assert "node" not in [str(c.label) for c in table.columns.values()]


async def test_the_matrix_scrolled_right_draws_the_columns_in_view(tmp_path: Path, fleet_store) -> None:
    """A matrix wider than its pane draws only the cells in view (RowTable._visible): scrolled to
    its right end, the drift column shows; at its left, the keys do."""
    settings, _url = fleet_store
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(60, 30)) as pilot:
        await ready(pilot)
        await type_command(pilot, "fleet")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen) and app.screen.query("#fleet-matrix"))
        matrix = app.screen.query_one("#fleet-matrix")
        await until(pilot, lambda: matrix.row_count == 8)
        assert matrix.virtual_size.width > 60  # wider than the pane
        shown = screen_text(app)
        assert "adapter/cache" in shown and "serve different" not in shown
        matrix.scroll_to(x=matrix.max_scroll_x, animate=False, immediate=True)
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "(ops: memory, web-1: memory, web-2: sqlite)" in shown, shown
        assert "adapter/cache" not in shown
