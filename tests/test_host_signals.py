"""Signals to a real host process: SIGHUP (an SSH session that goes away), SIGTERM (systemd,
kill) and SIGINT (Ctrl-C on a foreground `oneiric run`) all stop it the same graceful way:
providers stopped, `host-stopped` journaled, the lease released, exit 0. A host killed outright
reads as gone at once wherever a client looks, not after its lease goes stale."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from oneiric_core.store import StateStore
from tests.helpers import FAST_APP, REPO, demo_copy, wait_until

SIGNALS = [signal.SIGHUP, signal.SIGTERM, signal.SIGINT]


def marked_settings(tmp_path: Path) -> tuple[Path, Path]:
    """The demo with one more service, a provider that writes `stopped` to a file on stop."""
    settings = demo_copy(tmp_path)
    marker = tmp_path / "marker"
    (settings / "app.yml").write_text(FAST_APP + "  - tests.fixture_stop_marker\n")
    (settings / "services.yml").write_text(
        "selections:\n  scheduler: interval\n  stopmark: marker\n"
        "candidates:\n  - key: stopmark\n    provider: marker\n    factory: tests.fixture_stop_marker:create\n"
        f"    settings: {{path: {json.dumps(str(marker))}}}\n")
    return settings, marker


def cli(settings: Path, state: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                           "--state-dir", str(state), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, **kw)


def start_host(settings: Path, state: Path, log: Path) -> subprocess.Popen:
    out = log.open("w")
    host = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                             "--state-dir", str(state), "run"], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return host


def alive(settings: Path, state: Path) -> bool:
    res = cli(settings, state, "status", "--json")
    return res.returncode == 0 and bool((json.loads(res.stdout).get("host") or {}).get("alive"))


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_the_headless_host_stops_gracefully_on(sig: signal.Signals, tmp_path: Path) -> None:
    settings, marker = marked_settings(tmp_path)
    state, log = tmp_path / "state", tmp_path / "host.log"
    host = start_host(settings, state, log)
    try:
        wait_until(lambda: marker.exists() and alive(settings, state), "the host to start its providers",
                   timeout=60)
        assert marker.read_text() == "started\n"
        host.send_signal(sig)
        assert host.wait(60) == 0, log.read_text()
    finally:
        if host.poll() is None:
            host.kill()
    assert marker.read_text() == "stopped\n", "the host exited without stopping its providers"
    with StateStore(state / "state.sqlite") as store:
        assert store.current_lease() is None
        assert store.journal(limit=1)[-1].kind == "host-stopped"
    assert "Traceback" not in log.read_text()
    assert not alive(settings, state)


def test_a_host_killed_outright_reads_as_gone_at_once(tmp_path: Path) -> None:
    """SIGKILL leaves the lease behind, fresh for a few seconds: the pid is gone on this
    machine, so `status` (text and --json) says so right away."""
    settings, marker = marked_settings(tmp_path)
    state, log = tmp_path / "state", tmp_path / "host.log"
    host = start_host(settings, state, log)
    try:
        wait_until(lambda: marker.exists() and alive(settings, state), "the host to start", timeout=60)
    finally:
        host.kill()
        host.wait(30)
    with StateStore(state / "state.sqlite") as store:
        lease = store.current_lease()
    assert lease is not None and lease.pid == host.pid  # still there, and not stale yet
    res = cli(settings, state, "status", "--json")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)["host"]
    assert shown["pid"] == host.pid and shown["alive"] is False
    text = cli(settings, state, "status").stdout
    words = " ".join(text.split())  # however the line wraps
    assert (f"no host running: pid {host.pid} on {lease.hostname} is gone without releasing its lease "
            "(killed or crashed); showing configuration and last known health") in words, text
    assert marker.read_text() == "started\n"  # killed: it had no chance to stop its providers
