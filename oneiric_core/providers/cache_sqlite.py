"""adapter/cache `sqlite`: a cache kept in one SQLite file.

It exists for hosts that want their cache to survive a restart without running a server.
Each row keeps the value, whether it was text, and an absolute expiry (wall-clock seconds)
so a ttl still holds after a restart. Every sqlite3 call runs in a worker thread, under a
lock, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..domains import HealthResult
from ..private_files import create_private_file
from . import _common
from .cache_memory import Value, check_entry

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache ("
    " key TEXT PRIMARY KEY,"
    " value BLOB NOT NULL,"
    " is_text INTEGER NOT NULL,"
    " expires_at REAL)"
)


class SqliteCache:
    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        if self._conn is None:
            self._conn = await asyncio.to_thread(self._open)

    async def get(self, key: str) -> Value | None:
        check_entry(key)
        return await self._run(self._get, key)

    async def set(self, key: str, value: Value, ttl_s: float | None = None) -> None:
        check_entry(key, value, ttl_s)
        await self._run(self._set, key, value, ttl_s)

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when it was present."""
        check_entry(key)
        return await self._run(self._delete, key)

    async def purge_expired(self) -> int:
        """Drop every expired row; returns how many went."""
        return await self._run(self._purge)

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        if self._conn is None:
            return HealthResult.failed(f"The SQLite cache at {self.path} is not open.")
        try:
            key, token = f"__oneiric_health__:{uuid.uuid4().hex}", uuid.uuid4().hex.encode()
            await self.set(key, token, 60.0)
            seen = await self.get(key)
            removed = await self.delete(key)
            latency = _common.elapsed_ms(started)
            if seen != token or not removed:
                return HealthResult.failed(
                    f"The SQLite cache at {self.path} did not return the probe row it wrote.", latency)
            return HealthResult.ok(f"read and wrote {self.path}", latency)
        except (sqlite3.Error, OSError, RuntimeError) as exc:  # the database, the disk, or closed under us
            return HealthResult.failed(
                f"SQLite cache probe on {self.path} failed: {_common.describe(exc)}.", _common.elapsed_ms(started)
            )

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._close, conn)

    # -- worker-thread side ------------------------------------------------------------

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError(f"The SQLite cache at {self.path} is not open; start() it first.")
        return await asyncio.to_thread(fn, *args)

    def _open(self) -> sqlite3.Connection:
        create_private_file(self.path)  # before SQLite: its -wal/-shm take this file's mode
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(_SCHEMA)
            conn.execute("DELETE FROM cache WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),))
        except BaseException:
            conn.close()
            raise
        return conn

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"The SQLite cache at {self.path} was closed.")
        return conn

    def _get(self, key: str) -> Value | None:
        with self._lock:
            conn = self._db()
            row = conn.execute("SELECT value, is_text, expires_at FROM cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            value, is_text, expires_at = row
            if expires_at is not None and expires_at <= time.time():
                conn.execute("DELETE FROM cache WHERE key = ?", (key,))
                return None
            return bytes(value).decode("utf-8") if is_text else bytes(value)

    def _set(self, key: str, value: Value, ttl_s: float | None) -> None:
        is_text = isinstance(value, str)
        blob = value.encode("utf-8") if isinstance(value, str) else value
        expires_at = time.time() + ttl_s if ttl_s is not None else None
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO cache (key, value, is_text, expires_at) VALUES (?, ?, ?, ?)",
                (key, sqlite3.Binary(blob), int(is_text), expires_at),
            )

    def _delete(self, key: str) -> bool:
        with self._lock:
            return self._db().execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount > 0

    def _purge(self) -> int:
        with self._lock:
            cursor = self._db().execute(
                "DELETE FROM cache WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),)
            )
            return cursor.rowcount

    def _close(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            conn.close()


def create(settings: dict[str, Any]) -> SqliteCache:
    return SqliteCache(
        path=_common.file_path(settings, "path", "cache.sqlite"),
        busy_timeout_s=_common.number(settings, "busy_timeout_s", 5.0, positive=True),
    )
