"""Files and directories of the state dir, private by default: directories 0750, files 0640.

The state holds the journal, notes, incident write-ups and cached manifests: not for every
account on the machine, and never writable by the group (a group member who could write the
SQLite file could forge rows). Every place that creates something under the state dir goes
through here, so the modes hold whatever the process umask is, without changing the umask
(the engine is also a library, and the umask is the whole process's).

Why this works without chmod: the mode given to mkdir(2) and open(2) is *narrowed* by the
umask, never widened, so asking for 0750 / 0640 at creation gives that or tighter. SQLite
creates its -wal and -shm files with the mode of the main file, so creating the main file
first (`create_private_file`) makes all three private.

`audit` is the other half: what `oneiric status` warns about in a state dir that was
created otherwise (an older version, a hand-made directory, a loose systemd unit).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o750
FILE_MODE = 0o640


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as DIR_MODE (narrowed by the umask); a directory
    that exists already is left as it is (`audit` reports it when it is too wide)."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():  # a file in the way; another process's mkdir is fine
                raise
    return path


def open_private(path: Path) -> BinaryIO:
    """A new file at `path` (which must not exist), FILE_MODE, open for writing bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    return os.fdopen(fd, "wb")


def create_private_file(path: Path) -> None:
    """Create `path` empty as FILE_MODE unless it exists: then a program that opens it by
    name (SQLite, which would use 0644) finds it with the right mode already."""
    path = Path(path)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        open_private(path).close()


def write_private(path: Path, data: bytes, *, fsync: bool = True, temp_name: str | None = None) -> None:
    """Replace `path` with `data` atomically (a temporary file beside it, renamed into place,
    so a reader sees the old or the new content, never half), created as FILE_MODE.
    `temp_name` names that temporary file when the directory's owner has a rule for it."""
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(temp_name or f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open_private(tmp) as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- audit -------------------------------------------------------------------------------------

# What makes a mode wider than DIR_MODE / FILE_MODE in a way that matters: the group may
# write, or anyone else may do anything. (An owner or group execute bit on a file is
# strictly beyond 0640 too, but gives nobody access they did not have.)
_WIDER_BITS = ((stat.S_IWGRP, "group-writable"), (stat.S_IROTH, "world-readable"),
               (stat.S_IWOTH, "world-writable"), (stat.S_IXOTH, "world-executable"))


@dataclass(frozen=True, slots=True)
class WideMode:
    """A path under the state dir whose mode allows more than DIR_MODE / FILE_MODE."""

    path: Path
    mode: int  # the permission bits
    is_dir: bool
    wider: tuple[str, ...]  # what it allows that it should not, in words

    def sentence(self) -> str:
        allowed = f"{DIR_MODE if self.is_dir else FILE_MODE:04o}"
        return (f"{self.path} is {self.mode:04o} ({', '.join(self.wider)}); state should be {allowed} "
                f"or tighter (chmod {allowed} {self.path})")

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "mode": f"{self.mode:04o}", "problems": list(self.wider),
                "message": self.sentence()}


def audit(state_dir: Path, *, limit: int = 50) -> list[WideMode]:
    """Every path under `state_dir` (itself included) more open than it should be: a
    directory beyond 0750, a file beyond 0640 (group-writable or anything for others).
    Symlinks are not followed; unreadable parts are skipped. At most `limit` entries."""
    root = Path(state_dir)
    found: list[WideMode] = []

    def check(path: Path) -> None:
        try:
            info = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            return
        mode, is_dir = stat.S_IMODE(info.st_mode) & 0o777, stat.S_ISDIR(info.st_mode)
        # The host's socket (host.sock) is 0660: connecting needs write permission, so the
        # group's write bit is how the group may act; only others' bits are too wide there.
        bits = _WIDER_BITS[1:] if stat.S_ISSOCK(info.st_mode) else _WIDER_BITS
        wider = tuple(word.replace("executable", "searchable") if is_dir else word
                      for bit, word in bits if mode & bit)
        if wider:
            found.append(WideMode(path, mode, is_dir, wider))

    if not root.is_dir():
        return found
    check(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            check(Path(dirpath) / name)
            if len(found) >= limit:
                return found
    return found


__all__ = ["DIR_MODE", "FILE_MODE", "WideMode", "audit", "create_private_file", "open_private", "private_dir",
           "write_private"]
