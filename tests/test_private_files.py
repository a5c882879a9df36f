"""Private by default: a state directory made by real commands under umask 000 holds nothing
wider than 0750 (directories) / 0640 (files), `oneiric status` warns about anything wider,
and the systemd unit asks for the same."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from oneiric_core.store import StateStore

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEIRIC_", "NOTIFY_", "WATCHDOG_"))}
    return {**env, "ONEIRIC_OPERATOR": "tester"}


def _argv(settings: Path, state: Path, *args: str) -> list[str]:
    # umask 000 in the child only, set by the shell that then becomes the oneiric process
    return ["sh", "-c", 'umask 000 && exec "$@"', "sh", sys.executable, "-m", "oneiric_core.cli",
            "--settings", str(settings), "--state-dir", str(state), *args]


def _cli(settings: Path, state: Path, *args: str) -> str:
    proc = subprocess.run(_argv(settings, state, *args), capture_output=True, text=True, cwd=REPO, env=_env(),
                          timeout=120)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _modes(root: Path) -> dict[str, int]:
    """Every path's st_mode (type and permission bits) as it is now."""
    found = {".": os.lstat(root).st_mode}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = os.lstat(path).st_mode
    return found


def _too_wide(modes: dict[str, int], root: Path) -> dict[str, str]:
    wide = {}
    for name, st_mode in modes.items():
        mode = stat.S_IMODE(st_mode)
        # the host's socket: connecting needs write permission, so the group's is the point
        allowed = 0o750 if stat.S_ISDIR(st_mode) else 0o660 if stat.S_ISSOCK(st_mode) else 0o640
        if mode & ~allowed:
            wide[name] = f"{mode:04o}"
    return wide


def test_a_fresh_state_dir_is_private_whatever_the_umask(demo_settings: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = open(tmp_path / "host.log", "w")
    host = subprocess.Popen(_argv(demo_settings, state, "run"), cwd=REPO, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the host has activated everything once it journals a health check
            if (state / "state.sqlite").exists():
                with StateStore(state / "state.sqlite") as store:
                    if store.current_lease() and store.count_journal(kind="host-started"):
                        break
            time.sleep(0.1)
        _cli(demo_settings, state, "pause", "--key", "cache", "--note", "through the host")
        _cli(demo_settings, state, "remote-sync")
        _cli(demo_settings, state, "health", "--probe")
        while_hosting = _modes(state)  # the -wal and -shm exist while the host has the store open
        os.kill(host.pid, signal.SIGTERM)
        assert host.wait(60) == 0, (tmp_path / "host.log").read_text()
    finally:
        if host.poll() is None:
            host.kill()
        log.close()
    _cli(demo_settings, state, "pause", "--key", "storage", "--note", "no host now")
    _cli(demo_settings, state, "remote-sync")
    _cli(demo_settings, state, "incident", "open", "--title", "disk full", "--severity", "P2")
    _cli(demo_settings, state, "incident", "export", "1", "--out", str(state / "exports" / "incident-1.md"))
    after = _modes(state)

    assert {"state.sqlite", "state.sqlite-wal", "state.sqlite-shm"} <= set(while_hosting)
    assert {"remote/demo/manifest.raw", "remote/demo/record.json", "settings-last-good/app.yml",
            "scratch", "exports/incident-1.md"} <= set(after)
    assert _too_wide(while_hosting, state) == {}
    assert _too_wide(after, state) == {}
    assert [stat.S_IMODE(after[p]) for p in (".", "state.sqlite", "exports/incident-1.md")] == [0o750, 0o640, 0o640]


def test_status_warns_about_a_state_dir_or_file_that_is_too_open(run_cli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_cli("pause", "--key", "cache", state_dir=state).returncode == 0
    clean = run_cli("status", "--json", state_dir=state)
    assert clean.json()["warnings"] == []
    assert "warning:" not in run_cli("status", state_dir=state).stdout

    os.chmod(state, 0o770)
    os.chmod(state / "state.sqlite", 0o644)
    res = run_cli("status", "--json", state_dir=state)
    assert res.returncode == 0
    warnings = {w["path"]: w for w in res.json()["warnings"]}
    # SQLite gives the -wal and -shm it creates (opening the store for status) the main file's mode
    assert set(warnings) - {str(state / "state.sqlite-wal"), str(state / "state.sqlite-shm")} == {
        str(state), str(state / "state.sqlite")}
    assert warnings[str(state)]["mode"] == "0770" and warnings[str(state)]["problems"] == ["group-writable"]
    assert warnings[str(state / "state.sqlite")]["problems"] == ["world-readable"]
    text = run_cli("status", state_dir=state).stdout
    assert (f"warning: {state / 'state.sqlite'} is 0644 (world-readable); state should be 0640 or tighter "
            f"(chmod 0640 {state / 'state.sqlite'})") in text
    assert f"warning: {state} is 0770 (group-writable); state should be 0750 or tighter" in text


def test_the_systemd_unit_keeps_the_state_private() -> None:
    unit = (REPO / "deploy" / "systemd" / "oneiric.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["UMask"] == "0027"
    mode = int(settings["StateDirectoryMode"], 8)
    assert mode & 0o777 & ~0o750 == 0, f"StateDirectoryMode {settings['StateDirectoryMode']} is wider than 0750"
