"""The real console in a real terminal (tmux): it draws the tree and quits cleanly on `q`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from oneiric_core.store import StateStore
from tests.helpers import LOGIN, REPO, demo_copy

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def console_command(settings, state) -> str:
    """The shell command that starts the console on `settings` and `state`."""
    return shlex.join([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                       "--state-dir", str(state), "console"])


def new_session(session: str, shell: str, size: tuple[int, int] = (120, 40)) -> None:
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), shell],
                   check=True)


def test_console_in_tmux_shows_the_tree_and_quits_cleanly(tmp_path):
    settings = demo_copy(tmp_path)
    state = tmp_path / "state"
    done = tmp_path / "exit-code"
    session = f"oneiric-test-{tmp_path.name}"[:50]
    console = console_command(settings, state)
    shell = f"cd {shlex.quote(str(REPO))} && ONEIRIC_OPERATOR=tmux-tester {console}; echo $? > {shlex.quote(str(done))}"
    new_session(session, shell)
    try:
        assert wait_for(lambda: "cache  memory  + OK" in capture(session)), capture(session)
        screen = capture(session)
        for text in ("1 Components", "adapters", "storage  scratch", "3 Health", "4 Swap log",
                     f"operator {LOGIN} (tmux-tester)", "HOST"):
            assert text in screen, text
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        assert wait_for(lambda: "Quit and stop this host?" in capture(session)), capture(session)
        subprocess.run(["tmux", "send-keys", "-t", session, "y"], check=True)
        assert wait_for(done.exists), capture(session)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    store = StateStore(state / "state.sqlite")
    try:
        assert store.current_lease() is None  # the lease was released
        kinds = [e.kind for e in store.journal(limit=5)]
        assert kinds[-1] == "host-stopped"
    finally:
        store.close()


def test_closing_the_terminal_stops_the_engine_cleanly(tmp_path):
    settings = demo_copy(tmp_path)
    state = tmp_path / "state"
    session = f"oneiric-hup-{tmp_path.name}"[:50]
    console = console_command(settings, state)
    new_session(session, f"cd {shlex.quote(str(REPO))} && exec {console}", (100, 30))
    try:
        assert wait_for(lambda: "cache  memory  + OK" in capture(session)), capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)  # SIGHUP
    store = StateStore(state / "state.sqlite")
    try:
        assert wait_for(lambda: store.current_lease() is None, timeout=15)
        assert wait_for(lambda: store.journal(limit=1)[-1].kind == "host-stopped", timeout=5)
    finally:
        store.close()


@pytest.mark.parametrize("sig", ["HUP", "TERM", "INT"])
def test_a_signal_to_the_console_host_stops_it_gracefully(tmp_path, sig):
    """`kill -HUP` (the SSH session went away), `-TERM` and `-INT` to a console that is the
    host: providers stopped, `host-stopped` journaled, the lease released, exit 0."""
    import signal

    from tests.test_host_signals import marked_settings

    settings, marker = marked_settings(tmp_path)
    state = tmp_path / "state"
    done = tmp_path / "exit-code"
    pid_file = tmp_path / "pid"
    session = f"oneiric-sig-{tmp_path.name}"[:50]
    console = console_command(settings, state)
    inner = f"echo $$ > {shlex.quote(str(pid_file))}; exec {console}"  # the console gets the shell's pid
    shell = f"cd {shlex.quote(str(REPO))} && sh -c {shlex.quote(inner)}; echo $? > {shlex.quote(str(done))}; sleep 30"
    new_session(session, shell)
    try:
        assert wait_for(lambda: "cache  memory  + OK" in capture(session) and marker.exists()), capture(session)
        os.kill(int(pid_file.read_text()), getattr(signal, f"SIG{sig}"))
        assert wait_for(done.exists), capture(session)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert marker.read_text() == "stopped\n"
    with StateStore(state / "state.sqlite") as store:
        assert store.current_lease() is None
        assert store.journal(limit=1)[-1].kind == "host-stopped"


def test_a_provider_task_raising_system_exit_does_not_end_the_console_host(tmp_path):
    """The console hosts; a swap (asked from the CLI) goes to a provider whose health()
    awaits a task of its own that raises SystemExit: the swap rolls back, the console runs on."""
    from tests.helpers import FAST_APP, fixture_candidates

    settings = demo_copy(tmp_path)
    (settings / "app.yml").write_text(FAST_APP + "approvals:\n  mode: auto\n")
    adapters = settings / "adapters.yml"
    adapters.write_text(adapters.read_text().replace(
        "candidates:\n", fixture_candidates("cache", ("exits", "child_task_exits")), 1))
    state = tmp_path / "state"
    session = f"oneiric-exit-{tmp_path.name}"[:50]
    console = console_command(settings, state)
    new_session(session, f"cd {shlex.quote(str(REPO))} && {console}; echo EXITED $?; sleep 30")
    try:
        assert wait_for(lambda: "cache  memory  + OK" in capture(session)), capture(session)
        res = subprocess.run([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                              str(state), "swap", "--domain", "adapter", "--key", "cache", "--provider", "exits"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert res.returncode == 5 and "rolled back" in res.stderr and "SystemExit" in res.stderr, res
        assert "EXITED" not in capture(session)
        assert "cache  memory  + OK" in capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
