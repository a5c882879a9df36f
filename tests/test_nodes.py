"""Nodes (issue 18 point 2): every host has a node name, the store holds a lease per node, what
a host writes carries its node, and `oneiric nodes` lists them, from real `oneiric run --node`
processes on one PostgreSQL store and on a SQLite file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric_core.events import Event
from oneiric_core.store import SCHEMA_VERSION, ActivityRecord, HealthSnapshot, LifecycleSnapshot, StateStore
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[1]


def snapshot(node_store: StateStore, provider: str) -> None:
    node_store.put_lifecycle(LifecycleSnapshot("adapter", "cache", "ready", provider, "settings"))
    node_store.put_health(HealthSnapshot("adapter", "cache", provider, "ok", 1.0, "", 1.0, 1.0))


def test_each_node_of_a_shared_store_keeps_its_own_snapshots_and_activity(tmp_path: Path, store_url) -> None:
    a = StateStore(tmp_path / "a" / "state.sqlite", url=store_url, node="web-1")
    b = StateStore(tmp_path / "a" / "state.sqlite", url=store_url, node="web-2")
    try:
        snapshot(a, "redis")
        snapshot(b, "memory")
        b.set_activity(ActivityRecord("adapter", "cache", "paused", note="maintenance", actor="ops"))
        a.append(Event("host-started", "on web-1"))
        if store_url is None:
            # a SQLite file is one machine's one node: whoever wrote a row, it is the file's
            assert [s.provider for s in a.all_lifecycle()] == ["memory"]
            assert a.get_activity("adapter", "cache") is not None
        else:
            assert [s.provider for s in a.all_lifecycle()] == ["redis"]
            assert [s.provider for s in b.all_lifecycle()] == ["memory"]
            assert a.get_health("adapter", "cache").provider == "redis"
            assert a.get_activity("adapter", "cache") is None
            assert b.get_activity("adapter", "cache").state == "paused"
            b.clear_lifecycle()
            assert [s.provider for s in a.all_lifecycle()] == ["redis"] and b.all_lifecycle() == []
        (event,) = b.journal()
        assert event.node == "web-1"  # the journal is the fleet's: every node reads every event
    finally:
        a.close()
        b.close()


def test_a_lease_per_node_on_a_shared_store_and_one_per_file_on_sqlite(tmp_path: Path, store_url) -> None:
    a = StateStore(tmp_path / "state.sqlite", url=store_url, node="web-1")
    b = StateStore(tmp_path / "state.sqlite", url=store_url, node="web-2")
    try:
        assert a.acquire_lease(100, "box-1", now=time.time())[0]
        took, holder = b.acquire_lease(200, "box-2", now=time.time())
        if store_url is None:
            assert not took and holder is not None and holder.node == "web-1"
            assert [n.node for n in b.nodes()] == ["web-1"]
        else:
            assert took and b.current_lease().node == "web-2" and a.current_lease().node == "web-1"
            assert [(n.node, n.hostname) for n in a.nodes()] == [("web-1", "box-1"), ("web-2", "box-2")]
        assert a.release_lease(100, "box-1")
        assert a.current_lease() is None
        assert [n.stopped_at is not None for n in a.nodes() if n.node == "web-1"] == [True]  # listed, stopped
    finally:
        a.close()
        b.close()


def test_a_schema_8_lease_becomes_its_hosts_node(tmp_path: Path) -> None:
    from oneiric_core.store import sqlite_migrations

    path = tmp_path / "state.sqlite"
    raw = sqlite3.connect(path)
    for step in sqlite_migrations.MIGRATIONS[:8]:
        for statement in step:
            if callable(statement):
                statement(raw)
            else:
                raw.execute(statement)
    raw.execute("PRAGMA user_version = 8")
    raw.execute("INSERT INTO lease (id, pid, hostname, started_at, heartbeat_at) VALUES (1, 42, 'box', 5.0, 6.0)")
    raw.commit()
    raw.close()
    with StateStore(path, node="somewhere-else") as store:
        assert store.schema_version == SCHEMA_VERSION
        (node,) = store.nodes()
        assert (node.node, node.pid, node.hostname, node.heartbeat_at) == ("box", 42, "box", 6.0)
        assert store.current_lease().pid == 42  # still the file's lease, whatever this process's node is


def test_a_node_name_that_cannot_be_addressed_is_refused(run_cli) -> None:
    res = run_cli("--node", "web:1", "status")
    assert res.returncode == 2, str(res)
    assert res.stderr.strip() == ("oneiric: 'web:1' is not a node name: use letters, digits, '.', '_' and '-' "
                                  "(at most 63, starting with a letter or digit).")


# -- real hosts ---------------------------------------------------------------------------------


def oneiric(settings: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                           "--state-dir", str(state), *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def start_node(settings: Path, state: Path, node: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                                 "--state-dir", str(state), "--node", node, "run"], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT)


def nodes(settings: Path, state: Path) -> dict[str, dict]:
    res = oneiric(settings, state, "nodes", "--json")
    assert res.returncode == 0, res.stderr
    return {n["node"]: n for n in json.loads(res.stdout)["nodes"]}


def test_two_hosts_on_one_postgresql_store_are_two_nodes_and_a_silent_one_goes_stale(tmp_path: Path) -> None:
    from tests.pg import demo_on_store, fresh_schema

    with fresh_schema() as url:
        settings = demo_on_store(tmp_path / "fleet-settings", url)
        hosts = [start_node(settings, tmp_path / f"state-{n}", n, tmp_path / f"{n}.log") for n in ("web-1", "web-2")]
        try:
            seen = wait_until(what="both nodes to report", timeout=60, poll=0.2, predicate=lambda: (
                (found := nodes(settings, tmp_path / "cli")) and all(
                    found.get(n, {}).get("state") == "live" and found[n]["reported_at"] for n in ("web-1", "web-2"))
                and found))
            for name in ("web-1", "web-2"):
                assert seen[name]["serving"] >= 8 and seen[name]["failing"] == 0, seen[name]
                assert seen[name]["version"] and seen[name]["manifests"] == {"demo": 2}, seen[name]
            table = oneiric(settings, tmp_path / "cli", "nodes").stdout
            assert table.splitlines()[0].split() == ["NODE", "STATE", "VERSION", "HEARTBEAT", "SERVING", "FAILING",
                                                     "PAUSED", "MISCONF", "MANIFESTS"]
            hosts[1].send_signal(signal.SIGSTOP)  # web-2's host hangs: no more heartbeats
            stale = wait_until(what="web-2 to go stale", timeout=60, poll=0.2, predicate=lambda: (
                (found := nodes(settings, tmp_path / "cli"))["web-2"]["state"] == "stale" and found))
            assert stale["web-1"]["state"] == "live"
            hosts[1].send_signal(signal.SIGCONT)
            hosts[0].send_signal(signal.SIGTERM)
            assert hosts[0].wait(60) == 0, (tmp_path / "web-1.log").read_text()
            assert nodes(settings, tmp_path / "cli")["web-1"]["state"] == "stopped"
        finally:
            for host in hosts:
                if host.poll() is None:
                    host.send_signal(signal.SIGCONT)
                    host.terminate()
                    try:
                        host.wait(30)
                    except subprocess.TimeoutExpired:
                        host.kill()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_nodes_on_a_sqlite_store_lists_its_one_host(tmp_path: Path, demo_settings: Path, backend: str) -> None:
    state = tmp_path / "state"
    host = start_node(demo_settings, state, "edge-7", tmp_path / "host.log")
    try:
        found = wait_until(what="the host to report", timeout=60, poll=0.2, predicate=lambda: (
            (n := nodes(demo_settings, state)).get("edge-7", {}).get("reported_at") and n))
        assert list(found) == ["edge-7"] and found["edge-7"]["state"] == "live"
        event = json.loads(oneiric(demo_settings, state, "journal", "--json", "--limit", "1").stdout)["events"][-1]
        assert event["node"] == "edge-7"
    finally:
        host.terminate()
        host.wait(30)
