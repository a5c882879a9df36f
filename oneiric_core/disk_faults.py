"""Why a write under a directory failed, in the operator's words.

SQLite reports a full disk as "database or disk is full" only when the main file cannot
grow; when the WAL or its shared-memory file cannot, it says "disk I/O error", and a
read-only mount reads as "attempt to write a readonly database" or an I/O error too. At
3 a.m. "disk I/O error" sends an operator to check the hardware; what they need is "the
disk holding /var/lib/oneiric is full". The file system itself knows: `statvfs` tells how
many blocks are left and whether it is mounted read-only, whatever SQLite's wording.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .input_limits import size_text

# Fewer free bytes than this, for an unprivileged writer, is a full disk for a write that
# failed: SQLite writes whole pages (4 KiB) to the WAL, plus its index.
FULL_BELOW_BYTES = 64 * 1024


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def explain_write_failure(directory: Path, exc: BaseException | None = None) -> str | None:
    """A sentence saying the disk holding `directory` is full (ENOSPC) or its file system is
    read-only (EROFS), when that is why a write failed; None when neither holds (the
    caller's own message stands). `exc` may carry the errno itself (an OSError)."""
    code = getattr(exc, "errno", None)
    try:
        info = os.statvfs(directory)
    except OSError:
        return None
    mount = _mount_point(directory)
    if code == errno.EROFS or info.f_flag & os.ST_RDONLY:
        return f"the file system holding {directory} (mounted at {mount}) is read-only (EROFS)"
    if info.f_files and info.f_favail == 0:
        return f"the disk holding {directory} (mounted at {mount}) has no free inodes left (ENOSPC)"
    free = info.f_bavail * info.f_frsize
    if code == errno.ENOSPC or free < FULL_BELOW_BYTES:
        return f"the disk holding {directory} (mounted at {mount}) is full (ENOSPC): {size_text(free)} free"
    return None


__all__ = ["FULL_BELOW_BYTES", "explain_write_failure"]
