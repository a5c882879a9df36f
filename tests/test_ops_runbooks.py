"""The three operations runbooks (issue 14 point 6): the service supervisor, the observability
data on disk, telemetry performance. Each fact is checked against real state (a real host
process under a fake-free systemd environment, real journal rows, a real unit file, a real
small file system, a real OTLP receiver), and each tree is walked to the exit its state
leads to.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric_core.domains import Domain
from oneiric_core.engine import Engine
from oneiric_core.events import Event
from oneiric_core.runbooks.fact_index import FACTS
from oneiric_core.runbooks.facts import FactContext, evaluate
from oneiric_core.runbooks.facts_ops import timespan_s
from oneiric_core.runbooks.loader import load_catalog
from oneiric_core.runbooks.walker import Walker
from tests.helpers import DEMO, FAST_APP, demo_copy, until
from tests.otlp_receiver import Receiver

REPO = Path(__file__).resolve().parent.parent
ROLES = ["on_call", "incident_commander", "engineering_lead"]
SUPERVISION_ENV = ("INVOCATION_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def catalog():
    return load_catalog(DEMO, roles=ROLES)


async def fact(engine, name: str, **args):
    return await evaluate(name, FactContext(engine, {}, args=args))


async def walk(engine, tree: str, answers: dict[str, str] | None = None, limit: int = 30) -> tuple[str, list]:
    """Walk `tree` with only its checks and `answers` (node id -> choice); the exit node and
    the path of (node, value) taken."""
    walker = Walker(catalog(), tree, engine)
    path = []
    for _ in range(limit):
        if walker.finished or walker.node.kind in ("done", "escalate"):
            break
        node = walker.node
        if node.kind == "check":
            step = await walker.run_check()
            path.append((node.id, step.value))
        elif node.kind == "question":
            choice = (answers or {}).get(node.id)
            assert choice is not None, f"the walk asked {node.id!r} ({node.text}) and the test has no answer"
            walker.answer(choice)
            path.append((node.id, choice))
        else:
            raise AssertionError(f"unexpected node {node.id} ({node.kind})")
    return walker.node.id, path


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    return demo_copy(tmp_path)


@pytest.fixture
def no_supervisor(monkeypatch):
    for name in SUPERVISION_ENV:
        monkeypatch.delenv(name, raising=False)


def test_the_three_trees_load_and_name_only_known_facts():
    trees = catalog().trees
    for tree_id in ("service-supervisor", "observability-storage", "telemetry-performance"):
        assert tree_id in trees, catalog().errors
        for node in trees[tree_id].checks():
            assert node.fact in FACTS


def test_systemd_time_spans():
    assert timespan_s("30") == 30 and timespan_s("1min 30s") == 90 and timespan_s("500ms") == 0.5
    assert timespan_s("infinity") is None and timespan_s("soon") is None


# -- the supervisor -------------------------------------------------------------------------------

def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def test_a_host_under_systemd_with_a_watchdog_walks_to_done_and_its_stop_is_timed(settings, tmp_path, cli_env):
    state = tmp_path / "state"
    notify = _notify_socket(tmp_path / "notify.sock")
    env = {**cli_env, "INVOCATION_ID": "0123456789abcdef", "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "20000000"}
    host = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                             str(state), "run"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        notify.settimeout(30)
        while b"READY=1" not in notify.recv(4096):
            pass
        engine = Engine(settings, state_dir=state, actor="tester")
        try:
            lease = asyncio.run(fact(engine, "host.lease"))
            assert lease.value == "running" and f"pid {host.pid}" in lease.evidence[0]
            supervised = asyncio.run(fact(engine, "host.supervision"))
            assert supervised.value == "watchdog" and "20s watchdog" in supervised.evidence[0]
            # no unit is installed on this machine: the walk asks, never calls the shipped template "ok"
            exit_node, path = asyncio.run(walk(engine, "service-supervisor",
                                               {"unit-where": "systemd, under another name"}))
            assert exit_node == "lead", path
            assert [n for n, _ in path][:5] == ["lease", "supervision", "restarts", "last-stop", "unit"]
            assert ("unit", "template-only") in path
        finally:
            engine.close()
        host.send_signal(signal.SIGTERM)
        assert host.wait(30) == 0, host.stderr.read()
    finally:
        if host.poll() is None:
            host.kill()
        notify.close()
    engine = Engine(settings, state_dir=state, actor="tester")
    try:
        stop = asyncio.run(fact(engine, "host.last_stop"))
        assert stop.value == "graceful" and "took" in stop.evidence[0], stop.evidence
        assert asyncio.run(fact(engine, "host.lease")).value == "none"
    finally:
        engine.close()


async def test_an_unsupervised_host_is_said_to_be_so(settings, tmp_path, no_supervisor):
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        found = await fact(engine, "host.supervision")
        assert found.value == "unsupervised" and "nothing restarts it" in found.evidence[0]
        exit_node, path = await walk(engine, "service-supervisor",
                                     {"unsupervised": "yes - a container or another manager restarts it"})
        # another manager restarts it: not "done" (which checks the systemd unit the host does not run under)
        assert ("supervision", "unsupervised") in path and exit_node == "done-other"
    finally:
        await engine.stop()
        engine.close()


async def test_a_stop_that_cuts_providers_short_and_a_restart_loop(tmp_path, no_supervisor):
    settings = demo_copy(tmp_path)
    (settings / "adapters.yml").write_text(
        "selections:\n  cache: slow\ncandidates:\n  - key: cache\n    provider: slow\n"
        "    factory: tests.fixture_providers:slow_stop\n    settings:\n      stop_s: 5\n")
    for _ in range(3):  # three starts in a row: a restart loop
        engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
        await engine.start()
        await engine.stop(timeout=0.2)  # the provider takes 5 s to stop: the wait runs out
        engine.close()
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    try:
        stop = await fact(engine, "host.last_stop")
        assert stop.value == "cut-short" and "0.2s" in stop.evidence[0]
        restarts = await fact(engine, "host.restarts", window_s=3600, threshold=3)
        assert restarts.value == "many" and restarts.evidence[0].startswith("3 host start(s)")
        exit_node, path = await walk(engine, "service-supervisor", {"no-host": "yes - check the unit",
                                                                    "unit-where": "a container or another manager"})
        assert exit_node == "done-other" and path[0] == ("lease", "none") and ("unit", "template-only") in path
    finally:
        engine.close()


async def test_a_unit_without_restart_or_with_a_short_stop_timeout(settings, tmp_path):
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")  # cleanup_timeout 1.0 (FAST_APP)
    try:
        unit = tmp_path / "oneiric.service"
        unit.write_text("[Service]\nType=notify\nRestart=no\nTimeoutStopSec=30\n")
        found = await fact(engine, "deploy.unit", unit=str(unit))
        assert found.value == "no-restart" and "Restart=no" in found.evidence[-1]
        unit.write_text("[Service]\nRestart=on-failure\nTimeoutStopSec=1500ms\n")
        found = await fact(engine, "deploy.unit", unit=str(unit))
        assert found.value == "short-stop-timeout" and "1.5s" in found.evidence[-1]
        unit.write_text("[Service]\nRestart=always\n# TimeoutStopSec defaults to 90s\n")
        assert (await fact(engine, "deploy.unit", unit=str(unit))).value == "ok"
        missing = await fact(engine, "deploy.unit", unit=str(tmp_path / "none.service"))
        assert missing.value == "not-found"
    finally:
        engine.close()


# -- observability data on disk --------------------------------------------------------------------

def _old_events(count: int, days: float) -> list[Event]:
    ts = time.time() - days * 86400
    return [Event("swap-complete", f"old event {i}", domain=Domain.ADAPTER, key="cache", ts=ts + i)
            for i in range(count)]


async def test_old_rows_with_no_host_walk_to_start_one(settings, tmp_path):
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    try:
        engine.store.append_many(_old_events(50, days=45))
        storage = await fact(engine, "journal.storage")
        assert storage.value == "over-age" and "45." in storage.evidence[1] and "50 journal rows" in storage.evidence[0]
        assert (await fact(engine, "journal.last_prune")).value == "never"
        exit_node, path = await walk(engine, "observability-storage", {"start-host": "not now"})
        assert exit_node == "done-later"
        assert path[:4] == [("disk", "ok"), ("storage", "over-age"), ("why-over", "never"), ("no-prune", "none")]
    finally:
        engine.close()


async def test_a_host_prunes_the_old_rows_and_the_walk_ends_done(settings, tmp_path):
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    engine.store.append_many(_old_events(50, days=45))
    await engine.start()  # a host prunes at start, on a worker thread
    try:
        await until(lambda: engine.store.get_meta("journal_retention"), "the first prune's report", timeout=20)
        prune = await fact(engine, "journal.last_prune")
        assert prune.value == "recent" and "removed 50 rows" in prune.evidence[0]
        assert (await fact(engine, "journal.storage")).value == "within"
        exit_node, _ = await walk(engine, "observability-storage")
        assert exit_node == "done"
    finally:
        await engine.stop()
        engine.close()


def test_a_nearly_full_state_file_system_is_critical(tmp_path):
    from tests.test_store_faults import fill, tmpfs

    with tmpfs(tmp_path / "disk", size="4M") as disk:
        engine = Engine(demo_copy(tmp_path), state_dir=disk / "state", actor="tester")
        try:
            assert asyncio.run(fact(engine, "state.disk")).value == "ok"
            fill(disk)
            found = asyncio.run(fact(engine, "state.disk"))
            assert found.value == "critical" and "0%" in found.evidence[0]
            exit_node, path = asyncio.run(walk(engine, "observability-storage", {"disk-full": "cannot free any"}))
            assert path[0] == ("disk", "critical") and exit_node == "lead"
        finally:
            engine.close()


# -- telemetry performance -------------------------------------------------------------------------

def _otlp(tmp_path: Path, url: str) -> Path:
    settings = demo_copy(tmp_path / "otlp")
    (settings / "app.yml").write_text(FAST_APP + f"telemetry:\n  exporter: otlp\n  endpoint: {url}\n")
    return settings


async def test_an_exporter_whose_collector_is_down_walks_to_the_network_question(tmp_path, monkeypatch):
    for name in ("OTEL_METRIC_EXPORT_INTERVAL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"):
        monkeypatch.setenv(name, "200")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = Engine(_otlp(tmp_path, f"http://127.0.0.1:{port}"), state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        await until(lambda: engine.telemetry_status().state == "failing", "the export to fail", timeout=30)
        reach = await fact(engine, "telemetry.reachable")
        assert reach.value == "unreachable" and "connection refused" in reach.evidence[0]
        exit_node, path = await walk(engine, "telemetry-performance",
                                     {"network": "it is down and not ours to fix"})
        assert path[:2] == [("exporter", "failing"), ("reach", "unreachable")] and exit_node == "lead"
    finally:
        await engine.stop()
        engine.close()


async def test_an_exporting_host_is_measured_and_its_pipeline_named(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8192")
    with Receiver() as receiver:
        engine = Engine(_otlp(tmp_path, receiver.url), state_dir=tmp_path / "state", actor="tester")
        await engine.start()
        try:
            await until(lambda: engine.telemetry_status().state == "exporting", "an export", timeout=30)
            assert (await fact(engine, "telemetry.reachable")).value == "reachable"
            pipeline = await fact(engine, "telemetry.pipeline")
            assert pipeline.value == "tuned" and "OTEL_BSP_MAX_QUEUE_SIZE=8192" in pipeline.evidence
            overhead = await fact(engine, "telemetry.overhead", runs=50)
            median = overhead.data["median_us"]
            assert median > 0 and overhead.value == ("high" if median > 500 else "low")
            assert f"{median:.0f} µs" in overhead.evidence[0]
            answers = {"dropped": "no - nothing is dropped", "sample": "no - the cost is acceptable"}
            exit_node, path = await walk(engine, "telemetry-performance", answers)
            assert path[0] == ("exporter", "exporting") and exit_node == "done"
        finally:
            await engine.stop()
            engine.close()


async def test_telemetry_off_is_said_and_walks_to_done_off(settings, tmp_path):
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    try:
        found = await fact(engine, "telemetry.exporter")
        assert found.value == "off" and "not exported" in found.evidence[0]
        exit_node, _ = await walk(engine, "telemetry-performance",
                                  {"off": "yes - configure OTLP", "configure": "not now"})
        assert exit_node == "done-off"
    finally:
        engine.close()


def test_runbook_check_runs_the_new_facts(run_cli):
    res = run_cli("runbook", "check")
    assert res.returncode == 0, res.stderr
    for name in ("host.lease", "journal.storage", "state.disk", "telemetry.exporter", "deploy.unit"):
        assert f" {name}: " in res.stdout
