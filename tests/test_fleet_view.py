"""The fleet view (issue 18 point 5): nodes with their health roll-up and a key x node matrix
of what each node serves, drift marked, from what hosts keep in a real PostgreSQL store; in
the CLI (`oneiric fleet`) and in the console (`:fleet`, driven by Pilot)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from oneiric_core.engine import Engine
from oneiric_core.fleet import fleet_view
from oneiric_core.store import HealthSnapshot, LifecycleSnapshot, StateStore
from tests.helpers import demo_copy
from tests.pg import fresh_schema


def serve(store: StateStore, ref: str, provider: str, health: str = "ok") -> None:
    domain, key = ref.split("/")
    store.put_lifecycle(LifecycleSnapshot(domain, key, "ready", provider, "builtin"))
    store.put_health(HealthSnapshot(domain, key, provider, health, 1.0, "", time.time(), time.time()))


@pytest.fixture
def fleet_store(tmp_path: Path):
    """Settings on a fresh schema, and two nodes' rows as their hosts would write them:
    web-1 and web-2 agree on adapter/http, disagree on adapter/cache (web-2 swapped to
    sqlite), and both serve a workflow runner other than the settings select."""
    with fresh_schema() as url:
        settings = demo_copy(tmp_path / "fleet")
        with (settings / "app.yml").open("a") as app:
            app.write(f"store:\n  url: \"{url}\"\n")
        stores = [StateStore(tmp_path / n / "state.sqlite", url=url, node=n) for n in ("web-1", "web-2")]
        for i, store in enumerate(stores):
            assert store.acquire_lease(1000 + i, "box")[0]
            store.report_node(1000 + i, "box", {"serving": 3, "failing": i, "paused": 0, "misconfigured": 0,
                                                "manifests": {}, "at": time.time()})
            serve(store, "adapter/http", "httpx")
            serve(store, "workflow/runner", "queue")
        serve(stores[0], "adapter/cache", "memory")
        serve(stores[1], "adapter/cache", "sqlite", health="failed")
        try:
            yield settings, url
        finally:
            for store in stores:
                store.close()


def test_the_matrix_marks_keys_whose_nodes_differ_or_differ_from_the_settings(tmp_path: Path, fleet_store) -> None:
    settings, _url = fleet_store
    engine = Engine(settings, state_dir=tmp_path / "viewer", actor="tester", node="ops")
    try:
        fleet = fleet_view(engine)
    finally:
        engine.close()
    assert [(n.name, n.state, n.health) for n in fleet.nodes] == [("web-1", "live", "ok"), ("web-2", "live", "failing")]
    rows = {r.ref: r for r in fleet.rows}
    assert rows["adapter/cache"].drift == "nodes serve different providers (web-1: memory, web-2: sqlite)"
    assert rows["adapter/cache"].cells["web-2"].health == "failed"
    assert rows["workflow/runner"].drift == "served queue, the settings select inline"
    assert rows["adapter/http"].drift is None
    assert [r.ref for r in fleet.drifted] == ["adapter/cache", "workflow/runner"]


def test_oneiric_fleet_prints_the_matrix_and_exits_1_on_drift(tmp_path: Path, fleet_store, run_cli) -> None:
    settings, _url = fleet_store
    res = run_cli("fleet", "--json", settings=settings, state_dir=tmp_path / "cli")
    assert res.returncode == 1, str(res)
    doc = res.json()
    assert doc["drift"] == ["adapter/cache", "workflow/runner"]
    assert {n["node"]: n["health"] for n in doc["nodes"]} == {"web-1": "ok", "web-2": "failing"}
    text = run_cli("fleet", "--drift", settings=settings, state_dir=tmp_path / "cli").stdout
    header, *lines = [line for line in text.splitlines() if line.strip() and not line.startswith("─")]
    assert header.startswith("web-1: ok  web-2: failing")
    assert lines[0].split()[:3] == ["KEY", "SETTINGS", "WEB-1"]
    assert lines[1].split()[:6] == ["adapter/cache", "memory", "memory", "ok", "sqlite", "failed"]
    assert lines[-1] == "2 of 8 keys drift."


async def test_the_console_draws_the_fleet_and_marks_drift(tmp_path: Path, fleet_store) -> None:
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.screens.fleet import DRIFT_MARK, FleetScreen
    from tests.tui.conftest import ready, until
    from tests.tui.test_command_line import type_command

    settings, _url = fleet_store
    engine = Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops")
    app = OneiricApp(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "fleet")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen) and app.screen.fleet is not None)
        screen = app.screen
        head = str(screen.query_one("#fleet-head").render())
        # the console hosts node "ops" itself: three nodes
        assert "ops ok  web-1 ok  web-2 failing" in head and "2 of 8 keys drift" in head, head
        table = screen.query_one("#fleet-matrix")
        cache = [str(c) for c in table.row_cells("adapter/cache")]
        assert cache[0] == DRIFT_MARK and cache[3:6] == ["memory ok", "memory ok", "sqlite failed"], cache
        assert cache[6] == "nodes serve different providers (ops: memory, web-1: memory, web-2: sqlite)"
        assert str(table.row_cells("adapter/http")[0]) == ""
        await pilot.press("d")  # drift only
        await until(pilot, lambda: table.row_count == 2)
        assert table.ordered_keys == ["adapter/cache", "workflow/runner"]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FleetScreen))
