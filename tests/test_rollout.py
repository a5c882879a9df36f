"""Rolling swaps (issue 18 point 6) with real hosts: five `oneiric run --node web-N` processes on
one real PostgreSQL store, each with its own settings, a real redis-speaking server for the
nodes whose redis is up, and the CLI as an operator runs it. A node whose provider fails its
health gate halts the rollout and the nodes done so far swap back; the rollout goes on when
the process that started it and the host that coordinated it are killed; a node that stops
heartbeating halts it rather than counting as done."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oneiric_core.rollout import RolloutOptions, batch_size, plan_batches
from oneiric_core.store import StateStore
from tests.helpers import demo_copy, free_port, wait_until
from tests.pg import fresh_schema
from tests.test_nodes import REPO

KEY = "adapter/cache"


class _Pong(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        buffer = b""
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip().upper().startswith(b"PING"):
                    self.request.sendall(b"+PONG\r\n")


@pytest.fixture
def redis_port():
    """A server on 127.0.0.1 answering PING with PONG, as redis does: the nodes whose redis is up."""
    port = free_port()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Pong)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


class Fleet:
    def __init__(self, tmp: Path, url: str, redis_port: int) -> None:
        self.tmp, self.url, self.redis_port = tmp, url, redis_port
        self.hosts: dict[str, subprocess.Popen[bytes]] = {}

    def settings(self, node: str, *, redis_up: bool = True) -> Path:
        if (self.tmp / f"settings-{node}" / "settings").is_dir():
            return self.tmp / f"settings-{node}" / "settings"
        settings = demo_copy(self.tmp / f"settings-{node}")
        if redis_up:  # else the demo's port 6399, where nothing listens: redis fails its gate
            text = (settings / "adapters.yml").read_text().replace("port: 6399", f"port: {self.redis_port}")
            (settings / "adapters.yml").write_text(text)
        with (settings / "app.yml").open("a") as app:
            app.write(f"store:\n  url: \"{self.url}\"\n")
        return settings

    def start(self, node: str, *, redis_up: bool = True) -> None:
        settings = self.settings(node, redis_up=redis_up)
        log = (self.tmp / f"{node}.log").open("w")
        self.hosts[node] = subprocess.Popen(
            [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
             str(self.tmp / f"state-{node}"), "--node", node, "run"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(self.settings("ops")),
                               "--state-dir", str(self.tmp / "state-ops"), "--node", "ops", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    def store(self) -> StateStore:
        return StateStore(self.tmp / "reader" / "state.sqlite", url=self.url, node="reader")

    def ready(self, nodes: list[str]) -> None:
        def all_ready() -> bool:
            with self.store() as store:
                found = {n.node: n for n in store.nodes() if n.stopped_at is None}
                return all(n in found and found[n].summary.get("serving", 0) >= 8 for n in nodes)
        wait_until(what=f"{', '.join(nodes)} to be ready", poll=0.2, predicate=all_ready, timeout=90)

    def rollout(self, rollout_id: int):
        with self.store() as store:
            return store.rollouts.get(rollout_id)

    def stop(self) -> None:
        for host in self.hosts.values():
            if host.poll() is None:
                host.send_signal(signal.SIGCONT)
                host.terminate()
        for host in self.hosts.values():
            try:
                host.wait(30)
            except subprocess.TimeoutExpired:
                host.kill()


@pytest.fixture
def fleet(tmp_path: Path, redis_port: int):
    with fresh_schema() as url:
        fleet = Fleet(tmp_path, url, redis_port)
        try:
            yield fleet
        finally:
            fleet.stop()


def serving(fleet: Fleet) -> dict[str, str | None]:
    with fleet.store() as store:
        return {cell.node: cell.provider for cell in store.fleet_cells() if f"{cell.domain}/{cell.key}" == KEY}


def started(res: subprocess.CompletedProcess[str]) -> int:
    assert res.returncode == 0, res.stdout + res.stderr
    first = res.stdout.splitlines()[0]
    assert first.startswith("Rollout #"), res.stdout
    return int(first.split("#")[1].split(":")[0])


def test_the_plan_is_the_canary_then_batches() -> None:
    nodes = [f"web-{i}" for i in range(1, 8)]
    assert plan_batches(nodes, RolloutOptions(canary=1, batch="2")) == [
        ["web-1"], ["web-2", "web-3"], ["web-4", "web-5"], ["web-6", "web-7"]]
    assert plan_batches(nodes, RolloutOptions(canary=2, batch="50%")) == [
        ["web-1", "web-2"], ["web-3", "web-4", "web-5"], ["web-6", "web-7"]]
    assert batch_size("25%", 7) == 2
    with pytest.raises(Exception, match="is not a batch size"):
        batch_size("0", 3)


def test_a_node_failing_its_gate_halts_the_rollout_and_the_done_nodes_swap_back(fleet: Fleet) -> None:
    nodes = [f"web-{i}" for i in range(1, 6)]
    for node in nodes:
        fleet.start(node, redis_up=node != "web-4")
    fleet.ready(nodes)
    rollout_id = started(fleet.cli("rollout", "--key", KEY, "--provider", "redis", "--batch", "2", "--soak", "1s",
                                   "--reason", "cache to redis"))
    assert fleet.rollout(rollout_id).status == "pending"  # the one approval comes first
    res = fleet.cli("rollout", "approve", str(rollout_id))
    assert res.returncode == 5, res.stdout + res.stderr  # it followed the rollout to its halt
    rollout = fleet.rollout(rollout_id)
    assert rollout.status == "halted" and rollout.plan == [["web-1"], ["web-2", "web-3"], ["web-4", "web-5"]]
    assert rollout.halted_reason.startswith("the swap failed on web-4"), rollout.halted_reason
    steps = {s.node: s.status for s in rollout.steps}
    assert steps["web-4"] == "failed" and all(steps[n] == "rolled-back" for n in ("web-1", "web-2", "web-3"))
    assert steps["web-5"] in ("rolled-back", "failed"), steps
    assert set(serving(fleet).values()) == {"memory"}, serving(fleet)  # every node is back where it was
    # every node's swap is journaled on that node
    journal = json.loads(fleet.cli("journal", "--json", "--limit", "500", "--kind", "swap-complete").stdout)
    to_redis = {e["node"] for e in journal["events"] if e["provider"] == "redis" and e["key"] == "cache"}
    assert to_redis >= {"web-1", "web-2", "web-3"}, to_redis
    status = json.loads(fleet.cli("rollout", "status", str(rollout_id), "--json").stdout)
    assert status["requested_by_id"] == "db-role:root" and status["decided_by_id"] == "db-role:root"


def test_a_rollout_survives_the_death_of_who_started_it_and_of_its_coordinator(fleet: Fleet) -> None:
    nodes = ["web-1", "web-2", "web-3"]
    for node in [*nodes, "spare"]:
        fleet.start(node)
    fleet.ready([*nodes, "spare"])
    rollout_id = started(fleet.cli("rollout", "--key", KEY, "--provider", "redis", "--nodes", "web-*",
                                   "--soak", "3s", "--no-wait"))
    # Only "spare" may claim it (the others pause for less than their lease's 5 s)
    for node in nodes:
        fleet.hosts[node].send_signal(signal.SIGSTOP)
    watcher = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(fleet.settings("ops")),
                                "--state-dir", str(fleet.tmp / "state-ops"), "--node", "ops", "rollout", "approve",
                                str(rollout_id)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: fleet.rollout(rollout_id).coordinator == "spare", "spare to coordinate", timeout=10,
                   poll=0.2)
    finally:
        for node in nodes:
            fleet.hosts[node].send_signal(signal.SIGCONT)
    os.kill(watcher.pid, signal.SIGKILL)  # the operator's terminal goes away
    watcher.wait(10)
    fleet.hosts["spare"].send_signal(signal.SIGKILL)  # and so does its coordinator
    done = wait_until(lambda: (r := fleet.rollout(rollout_id)).finished and r, "the rollout to finish", timeout=120,
                      poll=0.2)
    assert done.status == "done", (done.status, done.halted_reason, [(s.node, s.status) for s in done.steps])
    assert done.coordinator in nodes  # another host took it over and finished it
    assert {n: serving(fleet)[n] for n in nodes} == {n: "redis" for n in nodes}


def test_a_node_that_stops_heartbeating_halts_the_rollout(fleet: Fleet) -> None:
    nodes = ["web-1", "web-2"]
    for node in nodes:
        fleet.start(node)
    fleet.ready(nodes)
    fleet.hosts["web-2"].send_signal(signal.SIGSTOP)  # hung: its lease goes stale in 5 s
    rollout_id = started(fleet.cli("rollout", "--key", KEY, "--provider", "redis", "--soak", "6s", "--no-wait"))
    res = fleet.cli("rollout", "approve", str(rollout_id))
    assert res.returncode == 5, res.stdout + res.stderr
    rollout = fleet.rollout(rollout_id)
    assert rollout.status == "halted" and rollout.halted_reason.startswith("node web-2 is stale"), rollout
    assert {s.node: s.status for s in rollout.steps} == {"web-1": "rolled-back", "web-2": "skipped"}
    nodes_json = json.loads(fleet.cli("nodes", "--json").stdout)
    assert {n["node"]: n["state"] for n in nodes_json["nodes"]}["web-2"] == "stale"


def test_a_rollout_on_a_sqlite_store_is_one_sentence(run_cli) -> None:
    res = run_cli("rollout", "--key", KEY, "--provider", "redis")
    assert res.returncode == 1, str(res)
    assert "is one node's (a SQLite file); a rollout goes over the nodes of a fleet store" in res.stderr, str(res)
    assert "\n" not in res.stderr.strip()


def test_only_live_nodes_are_planned(fleet: Fleet) -> None:
    shutil.rmtree(fleet.tmp / "nothing", ignore_errors=True)
    res = fleet.cli("rollout", "--key", KEY, "--provider", "redis")
    assert res.returncode == 2 and "No live node matches --nodes '*'" in res.stderr, res.stderr
    time.sleep(0)  # (no host started: nothing else to wait for)


def test_the_rolling_update_tree_walks_a_real_rollout_and_checks_every_nodes_version(fleet: Fleet) -> None:
    nodes = ["web-1", "web-2"]
    for node in nodes:
        fleet.start(node)
    fleet.ready(nodes)
    before = fleet.cli("runbook", "walk", "proc-rolling-update", "--json")
    # no rollout yet: the walk stops at the step that says how to start one (the operator's to do)
    assert before.returncode != 0 and "node 'fleet-start'" in before.stderr, before.stderr
    rollout_id = started(fleet.cli("rollout", "--key", KEY, "--provider", "redis", "--soak", "1s", "--no-wait"))
    assert fleet.cli("rollout", "approve", str(rollout_id)).returncode == 0
    walk = json.loads(fleet.cli("runbook", "walk", "proc-rolling-update", "--json").stdout)
    assert [s["node"] for s in walk["path"]] == ["where", "fleet-rollout", "fleet-versions", "fleet-done"]
    assert walk["exit"]["node"] == "fleet-done" and walk["exit"]["status"] == "finished", walk["exit"]
    versions = walk["path"][2]["evidence"]
    assert versions[0].startswith("Every node (2) runs ") and {line.split(":")[0] for line in versions[1:]} == {
        "web-1", "web-2"}, versions


async def test_the_console_starts_a_rollout_approves_it_and_shows_it_live(fleet: Fleet) -> None:
    """`:rollout cache redis` asks, writes the rollout; the rollouts view shows it pending, `a`
    approves it (asks first), and the hosts' progress shows there as it happens."""
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.screens.confirm import ConfirmDialog
    from oneiric_tui.screens.rollouts import RolloutsScreen
    from tests.tui.conftest import ready, until
    from tests.tui.test_command_line import type_command

    for node in ("web-1", "web-2"):
        fleet.start(node)
    fleet.ready(["web-1", "web-2"])
    engine = Engine(fleet.settings("ops"), state_dir=fleet.tmp / "console", actor="tester", node="ops")
    app = OneiricApp(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "rollout cache redis")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RolloutsScreen) and app.screen.rollouts)
        screen = app.screen
        (rollout,) = screen.rollouts
        assert rollout.status == "pending" and rollout.plan == [["ops"], ["web-1"], ["web-2"]]
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RolloutsScreen))
        steps = screen.query_one("#rollout-steps")
        # the canary (this console's own node) swaps and soaks; the view follows without a key
        await until(pilot, lambda: screen.rollouts and screen.rollouts[0].status == "running" and any(
            str(steps.get_row_at(i)[2]) == "soaking" for i in range(steps.row_count)), timeout=30)
        assert "batch 1/3" in str(screen.query_one("#rollouts-head").render())
