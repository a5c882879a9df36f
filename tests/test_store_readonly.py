"""A state directory the operator may read but not write: one sentence, no traceback.

Root ignores file modes, so a chmod test run as root (as CI does) proves nothing and used
to skip. Here the store is made by root and handed to a real OS user (tests/os_users.py)
who may read it but not write it, the way a team's shared state directory looks to
someone outside its group. The user's process has the user's kernel credentials, so the
kernel, not a check of ours, refuses the write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oneiric_core.events import Event
from oneiric_core.store import StateStore
from tests import os_users as real_users
from tests.helpers import demo_copy
from tests.os_users import OsUser, OsUsers

REPO = Path(__file__).resolve().parents[1]
os_users = real_users.os_users  # the fixture: real OS users for one test

# Runs as root until it has imported what it needs (the interpreter lives under /root, which
# other users cannot read), then drops to the user and tries one append. Prints what the
# operator would read, then `exit=<n>`.
_APPEND_AS = r"""
import os, sys
from oneiric_core.events import Event
from oneiric_core.store import StateStore, StoreError
import oneiric_core.store.journal, sqlite3, json, encodings.idna  # noqa: F401 (imported before the drop)
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
assert os.geteuid() == uid
try:
    store = StateStore(sys.argv[3])
    try:
        store.append(Event(kind="swap-complete", message="written by a reader"))
    finally:
        store.close()
except StoreError as exc:
    print(f"StoreError: {exc}")
    sys.exit(1)
print("appended")
"""


def _read_only_store(users: OsUsers) -> Path:
    """A store with one event, made by root: the directory 0755 and its files 0644, so every
    user can read it and only root can write it."""
    state = users.base / "state"
    state.mkdir()
    store = StateStore(state / "state.sqlite")
    store.append(Event(kind="swap-complete", message="written by root"))
    store.close()
    os.chmod(state, 0o755)
    for name in os.listdir(state):
        os.chmod(state / name, 0o644)
    return state


def _append_as(user: OsUser, path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _APPEND_AS, str(user.uid), str(user.gid), str(path)],
                          capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "HOME": str(cwd), "PYTHONPATH": str(REPO)})


def test_a_user_who_cannot_write_the_store_gets_one_sentence_and_nothing_is_written(os_users) -> None:
    reader = os_users.add("reader", in_group=False)
    state = _read_only_store(os_users)
    path = state / "state.sqlite"

    proc = _append_as(reader, path, os_users.base)

    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stdout.splitlines()
    message = line.removeprefix("StoreError: ")
    assert message.startswith("cannot ") and str(path) in message, message
    assert any(word in message for word in ("readonly", "read-only", "not writable", "unable to open")), message
    # the refusal is the kernel's: the store is unchanged (root reads it back)
    store = StateStore(path)
    try:
        assert [e.message for e in store.journal(limit=10)] == ["written by root"]
    finally:
        store.close()


def test_the_cli_says_so_in_one_sentence_when_the_state_directory_is_read_only(os_users) -> None:
    """The same store through the front door: with no host to ask, `oneiric pause` as that
    user would write the store itself; it ends in one sentence naming the directory and the
    user (and who can act instead), with exit code 1, and writes nothing."""
    reader = os_users.add("reader", in_group=False)
    state = _read_only_store(os_users)
    settings = demo_copy(os_users.base)
    os.chmod(os_users.base / "settings", 0o755)
    for file in settings.rglob("*"):
        os.chmod(file, 0o755 if file.is_dir() else 0o644)

    result = os_users.run_as(reader, "--settings", settings, "--state-dir", state,
                             "pause", "cache", "--note", "from a reader")

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"No host runs for {state}, and {reader.name} cannot write it" in lines[0], lines[0]
    store = StateStore(state / "state.sqlite")
    try:
        assert [e.message for e in store.journal(limit=10)] == ["written by root"]
    finally:
        store.close()
