"""Seals on the rows only the host may write: proposals and the record of commands.

A proposal decides what serves, so a row edited behind the engine's back (`UPDATE proposals
SET status='pending'` reviving an expired one, an inserted "approved" row) must never be acted
on. Each such row carries an HMAC over its fields, made with a key kept beside the store in a
file only the state directory's owner can read (`seal.key`, 0600). Whoever writes the store
without that key (another account that was given write access, a hand-made SQL edit) leaves a
row whose seal does not match: the host refuses it and journals `store-tampered`.

The key does not guard against the owner account itself, which could read it: the owner is
the host's own account and owns the file anyway. Operators who share that account are told
apart by SSH signatures (sshsig.py), not by this.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KEY_FILE = "seal.key"
KEY_BYTES = 32


class RowSeal:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> RowSeal | None:
        """The state directory's seal key, created (0600) on first use; None when this process
        may not read it (another account), which leaves it unable to write sealed rows."""
        path = Path(state_dir) / KEY_FILE
        for _ in range(2):
            try:
                key = path.read_bytes()
            except FileNotFoundError:
                try:
                    return cls(_create(path))
                except FileExistsError:  # another process created it just now: read theirs
                    continue
                except OSError:
                    return None
            except OSError:
                return None
            return cls(key) if len(key) == KEY_BYTES else None
        return None

    def seal(self, table: str, row_id: int, fields: Sequence[Any]) -> str:
        message = json.dumps([table, int(row_id), *fields], default=str, separators=(",", ":"),
                             ensure_ascii=True, sort_keys=True)
        return hmac.new(self._key, message.encode("ascii"), hashlib.sha256).hexdigest()

    def check(self, table: str, row_id: int, fields: Sequence[Any], seal: str | None) -> bool:
        return seal is not None and hmac.compare_digest(self.seal(table, row_id, fields), seal)


def _create(path: Path) -> bytes:
    """Write a new key under a temporary name and link it into place: a reader never sees a
    half-written key, and of two processes creating it at once exactly one wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    key = secrets.token_bytes(KEY_BYTES)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    finally:
        os.unlink(temp)
    return key


__all__ = ["KEY_FILE", "RowSeal"]
