"""Acting on another node of a fleet store (issue 18 points 3 and 4): `oneiric pause
web-2:cache` from anywhere writes a request the database stamps with the session's role; web-2's
host takes it at once, runs it with the rights of that role, and answers through the store.
Real hosts (`oneiric run --node`), a real PostgreSQL, real database roles."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from oneiric_core.store import StateStore, StoreError
from tests.helpers import wait_until
from tests.pg import demo_on_store, fresh_schema, require_pg
from tests.test_nodes import nodes, oneiric, start_node


@pytest.fixture
def fleet(tmp_path: Path):
    """Two live hosts, web-1 and web-2, on one fresh schema; yields (settings, url)."""
    with fresh_schema() as url:
        settings = demo_on_store(tmp_path / "fleet-settings", url)
        hosts = [start_node(settings, tmp_path / f"state-{n}", n, tmp_path / f"{n}.log") for n in ("web-1", "web-2")]
        try:
            wait_until(what="both hosts to be ready", timeout=60, poll=0.2, predicate=lambda: all(
                n.get("reported_at") for n in nodes(settings, tmp_path / "cli").values()) and len(
                nodes(settings, tmp_path / "cli")) == 2)
            yield settings, url
        finally:
            for host in hosts:
                host.send_signal(signal.SIGTERM)
            for host in hosts:
                try:
                    host.wait(30)
                except subprocess.TimeoutExpired:
                    host.kill()


def activity(settings: Path, state: Path, node: str) -> dict:
    res = oneiric(settings, state, "--node", node, "activity", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_pause_on_another_node_runs_on_that_nodes_host_as_the_database_role(tmp_path: Path, fleet) -> None:
    settings, url = fleet
    cli = tmp_path / "cli"
    res = oneiric(settings, cli, "--node", "ops-laptop", "pause", "web-2:cache", "--note", "fleet drill")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "paused" in res.stdout.lower(), res.stdout

    paused = activity(settings, cli, "web-2")
    assert [(a["domain"], a["key"], a["state"]) for a in paused["activity"]] == [("adapter", "cache", "paused")], paused
    assert activity(settings, cli, "web-1")["activity"] == []  # only web-2's host acted
    events = json.loads(oneiric(settings, cli, "journal", "--json", "--kind", "activity-changed").stdout)["events"]
    assert [(e["node"], e["key"]) for e in events] == [("web-2", "cache")]
    # each host seals and checks only its own node's rows: neither took the other's for tampering
    tampered = json.loads(oneiric(settings, cli, "journal", "--json", "--kind", "store-tampered").stdout)["events"]
    assert tampered == []
    with StateStore(tmp_path / "reader.sqlite", url=url, node="web-2") as store:
        (command,) = [c for c in store.commands_after(0) if c.kind == "pause"]
        assert command.requested_by_id == "db-role:root" and command.status == "done"


def test_acting_as_a_node_whose_host_runs_elsewhere_goes_through_the_store(tmp_path: Path, fleet) -> None:
    """`--node web-2` from another state directory (another machine): web-2's host is live but
    its socket is not here, so the request goes to its inbox in the store."""
    settings, _url = fleet
    cli = tmp_path / "elsewhere"
    res = oneiric(settings, cli, "--node", "web-2", "pause", "cache")
    assert res.returncode == 0, res.stdout + res.stderr
    assert activity(settings, cli, "web-2")["activity"][0]["state"] == "paused"
    res = oneiric(settings, cli, "--node", "web-2", "resume", "cache")
    assert res.returncode == 0, res.stdout + res.stderr
    assert activity(settings, cli, "web-2")["activity"] == []


def test_a_request_no_host_takes_is_withdrawn_and_never_runs(tmp_path: Path, fleet) -> None:
    settings, url = fleet
    res = oneiric(settings, tmp_path / "cli", "pause", "web-9:cache", "--wait", "1")
    assert res.returncode == 1
    assert res.stderr.startswith("oneiric: No host of node web-9 took the pause request #"), res.stderr
    assert res.stderr.rstrip().endswith("it was withdrawn and did not run.")
    with StateStore(tmp_path / "reader.sqlite", url=url) as store:
        (row,) = store.backend.read("SELECT status FROM requests WHERE node = 'web-9'")
        assert row[0] == "withdrawn"


def test_the_database_stamps_who_wrote_a_request_whatever_the_row_says(tmp_path: Path) -> None:
    import psycopg

    with fresh_schema() as url:
        StateStore(tmp_path / "s", url=url).close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO requests (node, kind, args, requested_by_id, created_at, status, result) "
                         "VALUES ('web-2', 'pause', '{}', 'db-role:alice', 0, 'done', '{\"message\": \"ok\"}')")
            row = conn.execute("SELECT requested_by_id, status, result FROM requests").fetchone()
        assert row == ("db-role:root", "pending", None)


def test_a_viewer_role_cannot_write_a_request_nor_touch_the_journal(tmp_path: Path) -> None:
    import psycopg

    base = require_pg()
    role = f"oneiric_test_viewer_{uuid.uuid4().hex[:8]}"
    with fresh_schema() as url, psycopg.connect(base, autocommit=True) as admin:
        with StateStore(tmp_path / "s", url=url) as store:
            from oneiric_core.events import Event

            store.append(Event("host-started", "up"))
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT oneiric_viewer TO {role}")
        try:
            as_viewer = url.replace("postgresql://", f"postgresql://{role}@", 1)
            viewer = StateStore(tmp_path / "v", url=as_viewer)
            try:
                assert viewer.read_only and [e.message for e in viewer.journal()] == ["up"]
                with pytest.raises(StoreError, match="permission denied for table requests"):
                    viewer.requests.submit("web-2", "pause", {"key": "cache"}, None, 0.0)
                with pytest.raises(StoreError, match="permission denied for table journal"):
                    viewer.backend.write(lambda conn: conn.execute("DELETE FROM journal"))
                assert viewer.requests.roles_of(role) == frozenset({"oneiric_viewer"})
            finally:
                viewer.close()
        finally:
            admin.execute(f"DROP ROLE {role}")


def test_another_node_on_a_sqlite_store_is_one_sentence(run_cli) -> None:
    res = run_cli("pause", "web-2:cache")
    assert res.returncode == 2, str(res)
    assert res.stderr.startswith("oneiric: The store ") and "is one node's (a SQLite file): there is no node web-2" \
        in res.stderr, str(res)


def test_node_prefix_on_a_command_that_cannot_take_it(run_cli) -> None:
    res = run_cli("list", "--key", "web-2:cache")
    assert res.returncode == 2, str(res)
    assert "list takes no NODE: before the key yet" in res.stderr, str(res)


async def test_the_console_pauses_a_key_on_another_node_through_the_store(tmp_path: Path, fleet) -> None:
    """`:pause web-2:cache` in a console of node ops: asked first, then web-2's host does it."""
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.screens.confirm import ConfirmDialog
    from tests.tui.conftest import ready, until
    from tests.tui.test_command_line import type_command
    from tests.tui.test_console import screen_text

    settings, _url = fleet
    app = OneiricApp(Engine(settings, state_dir=tmp_path / "console", actor="tester", node="ops"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "pause web-2:cache")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "on node web-2" in screen_text(app), screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: any("Paused adapter/cache" in n.message for n in app._notifications), timeout=20)
        assert all(s.activity == "active" for s in app.statuses.values())  # this node's keys are untouched
    paused = activity(settings, tmp_path / "cli", "web-2")
    assert [(a["key"], a["state"]) for a in paused["activity"]] == [("cache", "paused")]


def test_approvals_and_the_journal_fleet_wide_with_their_nodes(tmp_path: Path, fleet) -> None:
    settings, _url = fleet
    cli = tmp_path / "cli"
    for node in ("web-1", "web-2"):
        res = oneiric(settings, cli, "--node", "ops", "swap", f"{node}:cache", "--provider", "sqlite")
        assert res.returncode == 0 and "waits for approval" in res.stdout, res.stdout + res.stderr
    mine = json.loads(oneiric(settings, cli, "--node", "ops", "approvals", "--json").stdout)
    assert mine["pending"] == []  # node ops has none: a proposal is its node's
    every = json.loads(oneiric(settings, cli, "approvals", "--fleet", "--json").stdout)
    assert sorted((p["node"], p["to_provider"]) for p in every["pending"]) == [("web-1", "sqlite"), ("web-2", "sqlite")]
    table = oneiric(settings, cli, "approvals", "--fleet").stdout
    assert table.splitlines()[0].split()[:3] == ["NODE", "ID", "COMPONENT"], table
    web2 = json.loads(oneiric(settings, cli, "journal", "--from", "web-2", "--json", "--limit", "500").stdout)
    assert web2["events"] and {e["node"] for e in web2["events"]} == {"web-2"}
    text = oneiric(settings, cli, "journal", "--from", "web-2", "--kind", "swap-proposed").stdout
    assert text.splitlines()[0].split()[:3] == ["TIME", "NODE", "KIND"], text
