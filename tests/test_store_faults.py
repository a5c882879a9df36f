"""Storage faults through the real CLI: a corrupted SQLite file, a full disk and a read-only
file system (real tmpfs mounts). A write that fails makes the command fail with one sentence
that says where and why, and prints no success; what can still be read is still shown."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096


def zero_root_page(db: Path, table: str) -> None:
    """Zero the root page of `table` inside the file, as a bad sector or a stray write would."""
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    page = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page)
        f.write(b"\0" * page)


def one_sentence(res, *parts: str) -> str:
    assert res.returncode == 1, str(res)
    assert res.stdout == "", f"a failed write printed something on stdout: {res.stdout!r}"
    err = res.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


def test_a_write_into_a_corrupted_journal_fails_and_changes_nothing(run_cli, tmp_path):
    assert run_cli("status").returncode == 0  # the store exists, healthy
    db = tmp_path / "state" / "state.sqlite"
    zero_root_page(db, "journal")
    err = one_sentence(run_cli("pause", "--key", "cache", "--note", "maintenance"),
                       "Could not pause a component: cannot write the state store", str(db), "malformed")
    assert "Paused" not in err
    # the pause and its journal line were one write: the activity table still says active
    shown = run_cli("activity", "--json")
    assert shown.returncode == 0, str(shown)
    assert shown.json()["activity"] == []


def test_an_action_done_while_the_journal_cannot_record_it_is_no_success(run_cli, tmp_path):
    asked = run_cli("swap", "--key", "cache", "--provider", "memory-large")  # approvals: manual -> a proposal
    assert asked.returncode == 0 and "waits for approval" in asked.stdout, str(asked)
    zero_root_page(tmp_path / "state" / "state.sqlite", "journal")
    err = one_sentence(run_cli("reject", "1"), "Rejected proposal #1",
                       "but the state store did not record all of it", "malformed")
    assert err.startswith("oneiric: Rejected proposal #1")


# -- a real small file system ----------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(where: Path, size: str = "2M") -> Iterator[Path]:
    where.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"oneiric-{uuid.uuid4().hex[:8]}",
                              str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): run as root "
                    "(CI does) to test a full disk and a read-only file system")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # down to the last byte
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_named_and_what_is_there_can_still_be_read(run_cli, tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        state = disk / "state"
        assert run_cli("pause", "--key", "cache", "--note", "before", state_dir=state).returncode == 0
        filler = fill(disk)
        err = one_sentence(run_cli("resume", "--key", "cache", state_dir=state),
                           f"the disk holding {state} (mounted at {disk}) is full (ENOSPC)")
        assert "Resumed" not in err and "disk I/O error" not in err.split("(SQLite")[0]
        shown = run_cli("activity", "--json", state_dir=state)  # reads still work
        assert shown.returncode == 0, str(shown)
        assert [(a["key"], a["state"], a["note"]) for a in shown.json()["activity"]] == [("cache", "paused", "before")]
        assert run_cli("journal", "--limit", "1", state_dir=state).returncode == 0
        filler.unlink()  # room again: the same command works
        again = run_cli("resume", "--key", "cache", state_dir=state)
        assert again.returncode == 0 and again.stdout.startswith("Resumed adapter/cache"), str(again)


def test_a_read_only_file_system_is_named_and_reads_still_work(run_cli, tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        state = disk / "state"
        assert run_cli("pause", "--key", "cache", "--note", "before", state_dir=state).returncode == 0
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        assert remounted.returncode == 0, remounted.stderr
        res = run_cli("resume", "--key", "cache", state_dir=state)
        assert res.returncode != 0 and res.stdout == "", str(res)
        assert f"the file system holding {state} (mounted at {disk}) is read-only (EROFS)" in res.stderr, str(res)
        assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
        shown = run_cli("activity", "--json", state_dir=state)
        assert shown.returncode == 0, str(shown)
        assert [a["state"] for a in shown.json()["activity"]] == ["paused"]
