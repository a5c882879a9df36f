"""The SQLite backend: one file every process of a state dir shares.

Several processes (the host, consoles, CLI invocations) open the same file, so it runs in WAL
mode, every write is a `BEGIN IMMEDIATE` transaction (a writer takes the write lock up front
and waits for it under `busy_timeout` instead of failing half way), and a busy/locked error is
retried a few times with a short backoff before it is reported. Within one process a single
connection is shared by every thread under an `RLock`. Any sqlite3 error that escapes is
re-raised as `StoreError`, one sentence naming the file and the reason. The schema is
versioned with `PRAGMA user_version` (sqlite_migrations.py).

It is also the store's `Maintenance`: free pages, incremental vacuum and the WAL checkpoints a
long prune takes by hand (WalCheckpoints), which a server database does by itself."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .. import private_files
from ..disk_faults import explain_write_failure
from ..errors import UsageError
from .backend import Connection, Dialect, Row
from .codec import _loads
from .records import PRUNE_PROGRESS_META, RESTART_FRAMES, VACUUM_META, StoreError
from .sqlite_migrations import AUTO_VACUUM_INCREMENTAL, MIGRATIONS, SCHEMA_VERSION, VACUUM_RETRY_S

T = TypeVar("T")

_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
# SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: what a full or read-only disk looks like
_DISK_CODES = frozenset({8, 10, 13, 14})
_RETRIES = 6


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in _BUSY_CODES:
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _ci_contains(haystack: Any, needle: Any) -> int:
    if haystack is None or needle is None:
        return 0
    return int(str(needle).casefold() in str(haystack).casefold())


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


class SqliteDialect:
    """SQLite's spelling of what differs (backend.Dialect)."""

    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"

    def contains(self, column: str) -> str:
        return f"oneiric_contains({column}, ?)"

    def insert_id(self, conn: Connection, sql: str, params: Sequence[Any]) -> int:
        """The id the INSERT gave its row (`lastrowid` is None only on a cursor that inserted nothing)."""
        row_id = getattr(conn.execute(sql, params), "lastrowid", None)
        if row_id is None:
            raise sqlite3.DatabaseError("the INSERT gave no row id")
        return int(row_id)

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(_insert_sql(table, tuple(columns)), rows)

    def savepoint(self, conn: Connection) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # a failed statement leaves SQLite's transaction as it was


class WalCheckpoints:
    """Checkpoints taken by hand during a long run of writes (SqliteBackend.checkpoints_aside).

    `backfill` copies the WAL into the main file on a connection of its own, without the
    store's lock, so the event loop's writes go on meanwhile (its fsyncs are the slow part).
    That alone does not keep the WAL small: SQLite starts it over only at a write that *began*
    with everything copied. When the loop is quiet, the side connection makes that write
    itself right after its copy (one meta row, PRUNE_PROGRESS_META). When the loop journals
    every few ms, one of its commits nearly always lands in between; so once the WAL holds
    RESTART_FRAMES, `restarting` copies the last few frames under the store's lock and the
    write made inside starts the WAL over: a few fsyncs the loop may wait for, once per
    RESTART_FRAMES, where without a prune its own commit copies 1,000 pages and fsyncs at
    SQLite's autocheckpoint mark. Without restarts, a prune of 180,000 rows left a 170 MB WAL
    behind (900,000: about 800 MB); with them it stays near RESTART_FRAMES pages."""

    def __init__(self, store: SqliteBackend, side: sqlite3.Connection) -> None:
        self._store, self._side = store, side
        self.frames = 0  # frames in the WAL at the last copy
        self.progress: dict[str, Any] = {}  # what the restarting write records (the prune's figures)

    def backfill(self, *, restart: bool = False) -> int:
        """Copy what the WAL holds into the main file (PASSIVE: waits for nobody) and, when it
        is long (or `restart`) and all of it was copied, start it over; the WAL's frames. A
        busy checkpoint is skipped (the next one goes further)."""
        try:
            row = self._side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.frames = max(0, int(row[1])) if row is not None else 0
            if (row is not None and (self.frames >= RESTART_FRAMES // 2 or (restart and self.frames))
                    and int(row[1]) == int(row[2])):
                self._side.execute("BEGIN IMMEDIATE")
                self._side.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                   (PRUNE_PROGRESS_META, json.dumps({**self.progress, "at": time.time()})))
                self._side.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._side.in_transaction:
                self._side.execute("ROLLBACK")
            if not _is_busy(exc):
                raise self._store.error("checkpoint", exc) from exc
        return self.frames

    @contextlib.contextmanager
    def restarting(self) -> Iterator[float]:
        """Hold the store's lock; when the WAL holds RESTART_FRAMES, copy its last frames first,
        so that the write made inside starts it over. Yields the seconds that took (fsyncs),
        which the write inside should leave out of its share of the lock."""
        store = self._store
        with store._lock:
            spent = 0.0
            if self.frames >= RESTART_FRAMES:
                t0 = time.perf_counter()
                try:
                    store._require().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.frames = 0
                except sqlite3.Error as exc:
                    if not _is_busy(exc):
                        raise store.error("checkpoint", exc) from exc
                spent = time.perf_counter() - t0
            yield spent


class FileListener:
    """A SQLite store's Listener: its own connection watches `PRAGMA data_version`, which
    moves at every commit of any other connection to the file (a file has no push)."""

    POLL_S = 0.02

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                     isolation_level=None)
        self._seen = self._version()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                now = self._version()
            except sqlite3.Error:
                now = self._seen  # busy or locked for a moment: look again
            if now != self._seen:
                self._seen = now
                return ["changed"]
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            time.sleep(min(self.POLL_S, left))

    def close(self) -> None:
        self._conn.close()


class SqliteBackend:
    """The shared SQLite state file (backend.Backend and backend.Maintenance). Safe to use
    from many threads and many processes."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._lock = threading.RLock()
        self._batch_owner: int | None = None  # thread id inside batch(), if any
        self._conn: sqlite3.Connection | None = None
        # The key that seals proposal and command rows (seal.py); set by the engine. Without
        # one, rows read back with `sealed=None` and sealed rows cannot be written.
        self._rollback_hooks: list[Callable[[], None]] = []
        self.dialect: Dialect = SqliteDialect()
        self.holds_one_node = True
        try:
            private_files.private_dir(self.path.parent)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                f"cannot create the directory {self.path.parent} for the state store {self.path}: {reason}"
            ) from exc
        # Created private before SQLite opens it: its -wal and -shm take the main file's mode.
        # When that fails (a read-only directory) SQLite's own open says why, in its words.
        with contextlib.suppress(OSError):
            private_files.create_private_file(self.path)
        # A member of the state directory's group may read the store but not write it (files
        # are 0640): such a process opens it read-only, and, while no host keeps the WAL files
        # in place for it, as immutable (a WAL database's main file changes only at checkpoints).
        self.read_only = self.path.exists() and not (
            os.access(self.path, os.R_OK | os.W_OK) and os.access(self.path.parent, os.W_OK | os.X_OK))
        # Why writes will fail, when it is the disk (full, or mounted read-only) and not who we are.
        self.write_failure: str | None = None
        try:
            self._open(("?mode=ro", "?mode=ro&immutable=1") if self.read_only else ("",))
        except StoreError:
            # A full disk cannot take the WAL's files a read-write open creates: what is on
            # disk can still be read (status, activity, journal), and a write says why not.
            disk = None if self.read_only or not self.path.exists() else explain_write_failure(self.path.parent)
            if disk is None:
                raise
            self.read_only, self.write_failure = True, disk
            self._open(("?mode=ro", "?mode=ro&immutable=1"))

    def _open(self, modes: tuple[str, ...]) -> None:
        for attempt, mode in enumerate(modes):
            try:
                conn = self._connect(mode)
                conn.create_function("oneiric_contains", 2, _ci_contains, deterministic=True)
                self._conn = conn
                self._retry("open", self._configure)
                self._migrate()
                return
            except (sqlite3.Error, StoreError) as exc:
                self._conn = None
                with contextlib.suppress(Exception):
                    conn.close()
                if attempt == len(modes) - 1:
                    raise exc if isinstance(exc, StoreError) else self.error("open", exc) from exc

    def _connect(self, mode: str) -> sqlite3.Connection:
        target, uri = (str(self.path), False) if not mode else (f"{self.path.resolve().as_uri()}{mode}", True)
        conn = sqlite3.connect(
            target, uri=uri,
            timeout=self.busy_timeout_ms / 1000.0,
            check_same_thread=False,
            isolation_level=None,  # autocommit: this class issues BEGIN IMMEDIATE / COMMIT itself
        )
        conn.row_factory = sqlite3.Row
        return conn

    # ------------------------------------------------------------------ plumbing

    def _configure(self) -> None:
        conn = self._require()
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        if self.read_only:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # fails now, not at the first read
            return
        if int(conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
            # A new file: incremental vacuum has to be chosen before anything is written (WAL
            # mode included), so pruned pages can go back to the file system (retention.py).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot open the state store {self.path}: the file cannot switch to WAL mode "
                f"(it stays in {mode} mode)"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        # Up to date (the usual case): a read, not a write transaction, so the many short-lived
        # CLI processes opening the store never queue behind the host for the write lock.
        current = self._retry("open", lambda: self._require().execute("PRAGMA user_version").fetchone()[0])
        if current == SCHEMA_VERSION:
            if not self.read_only and self.auto_vacuum() != AUTO_VACUUM_INCREMENTAL:
                self._owed_vacuum()
            return
        if self.read_only:
            raise StoreError(f"cannot open the state store {self.path}: it has schema version {current}, this "
                             f"program needs {SCHEMA_VERSION}, and this user may not write it to migrate it; "
                             "run any oneiric command as its owner once")

        def run(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open the state store {self.path}: it has schema version {version} "
                    f"but this program knows only up to {SCHEMA_VERSION}, so upgrade the program"
                )
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index]:
                    if callable(statement):
                        statement(conn)
                    else:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index + 1}")

        self.write(run, action="migrate")
        self._owed_vacuum()

    def auto_vacuum(self) -> int:
        """PRAGMA auto_vacuum of the file: 0 NONE, 1 FULL, 2 INCREMENTAL (what pruning needs
        to give space back)."""
        return int(self._retry("read", lambda: self._require().execute("PRAGMA auto_vacuum").fetchone()[0]))

    def _owed_vacuum(self) -> None:
        """Run the one-time VACUUM migration 8 noted (outside any transaction, as SQLite
        requires), once: it rewrites the whole file, in about a second per 200,000 journal
        rows, and needs free disk for a copy of it. When it fails (a full disk, a writer that
        holds the file for longer than the busy timeout) the store works on without giving
        space back, the reason is kept in meta (retention reports it), and a later open tries
        again after VACUUM_RETRY_S. Never raises: the store is usable either way."""
        owed = self._get_meta(VACUUM_META)
        if not isinstance(owed, dict):
            return
        failed_at = owed.get("failed_at")
        if isinstance(failed_at, (int, float)) and time.time() - failed_at < VACUUM_RETRY_S:
            return

        def vacuum() -> None:
            conn = self._require()
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rewritten file went through the WAL

        try:
            self._retry("vacuum", vacuum)
            if self.auto_vacuum() != AUTO_VACUUM_INCREMENTAL:
                raise StoreError(f"cannot vacuum the state store {self.path}: SQLite kept auto_vacuum off")
            self.write(lambda conn: conn.execute("DELETE FROM meta WHERE key = ?", (VACUUM_META,)))
        except StoreError as exc:
            with contextlib.suppress(StoreError):
                self._set_meta(VACUUM_META, {"failed_at": time.time(), "reason": str(exc)})

    def vacuum_owed(self) -> str | None:
        """Why pruned rows do not give their space back, or None when they do."""
        if self.auto_vacuum() == AUTO_VACUUM_INCREMENTAL:
            return None
        owed = self._get_meta(VACUUM_META)
        reason = owed.get("reason") if isinstance(owed, dict) else None
        return (f"the store predates incremental vacuum and its one-time VACUUM failed ({reason})" if reason
                else "the store's auto_vacuum is not INCREMENTAL")

    def _require(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StoreError(f"cannot use the state store {self.path}: it is closed")
        return conn

    def error(self, action: str, exc: BaseException) -> StoreError:
        reason = str(exc) or type(exc).__name__
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _DISK_CODES:
            disk = explain_write_failure(self.path.parent, exc)
            if disk is not None:  # "disk I/O error" said where and why, as the file system tells it
                return StoreError(f"cannot {action} the state store {self.path}: {disk} (SQLite: {reason})")
        if action == "open" and "unable to open" in reason.lower():
            parent = self.path.parent
            if not os.access(parent, os.W_OK | os.X_OK):
                reason = f"{reason} (the directory {parent} is not writable)"
        return StoreError(f"cannot {action} the state store {self.path}: {reason}")

    def _retry(self, action: str, fn: Callable[[], T]) -> T:
        """Run `fn` under the lock; retry busy/locked errors with a short backoff."""
        delay = 0.02
        for attempt in range(_RETRIES):
            with self._lock:
                try:
                    return fn()
                except sqlite3.Error as exc:
                    if not (_is_busy(exc) and attempt < _RETRIES - 1):
                        raise self.error(action, exc) from exc
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside one transaction (a swap's journal and snapshot writes).

        Holds the lock for its duration, so keep it short and never await inside it. If a
        write inside fails, everything in the batch is rolled back and StoreError raised."""
        with self._lock:
            if self._batch_owner == threading.get_ident():
                yield
                return
            conn = self._require()
            self._retry("write", lambda: conn.execute("BEGIN IMMEDIATE"))
            self._batch_owner = threading.get_ident()
            try:
                yield
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rolled_back()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self.error("write", exc) from exc
            except BaseException:
                self._rolled_back()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._batch_owner = None

    def write(self, fn: Callable[[sqlite3.Connection], T], *, action: str = "write") -> T:
        """One `BEGIN IMMEDIATE` transaction running `fn`; rolled back if anything raises."""
        if self._batch_owner == threading.get_ident():
            try:
                return fn(self._require())
            except sqlite3.Error as exc:
                raise self.error(action, exc) from exc

        def attempt() -> T:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                self._rolled_back()
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise

        return self._retry(action, attempt)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._retry("read", lambda: self._require().execute(sql, params).fetchall())

    def pragma(self, name: str, value: int | str | None = None) -> Any:
        """Read (or set) one PRAGMA on this store's connection, e.g. `pragma("journal_mode")`."""
        if not name.replace("_", "").isalnum():
            raise UsageError(f"'{name}' is not a PRAGMA name.")
        if value is not None and not str(value).replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"'{value}' is not a valid PRAGMA value.")
        sql = f"PRAGMA {name}" if value is None else f"PRAGMA {name} = {value}"

        def run() -> Any:
            row = self._require().execute(sql).fetchone()
            return None if row is None else row[0]

        return self._retry("read", run)

    @property
    def schema_version(self) -> int:
        return int(self.pragma("user_version"))

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def maintenance(self) -> SqliteBackend:
        return self

    def in_batch(self) -> bool:
        return self._batch_owner == threading.get_ident()

    def on_rollback(self, callback: Callable[[], None]) -> None:
        self._rollback_hooks.append(callback)

    def _rolled_back(self) -> None:
        for hook in self._rollback_hooks:
            hook()

    def data_version(self) -> int:
        """Changes whenever *another* connection commits: lets a poller skip unchanged rounds."""
        return int(self.pragma("data_version"))

    def _get_meta(self, key: str) -> Any:
        rows = self.read("SELECT value FROM meta WHERE key = ?", (key,))
        return _loads(rows[0][0], None) if rows else None

    def _set_meta(self, key: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        self.write(lambda conn: conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text)))

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise StoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self.error("close", exc) from exc

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the file, whatever other processes commit meanwhile
        (a read transaction; WAL lets writers go on). For walks over many pages, such as
        `journal verify`, which must not see a prune half way. No writes inside."""
        with self._lock:
            conn = self._require()
            self._retry("read", lambda: conn.execute("BEGIN DEFERRED"))
            try:
                self._retry("read", lambda: conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall())
                yield
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def free_pages(self) -> int:
        """Pages of the file that pruned rows left free (the file's size less what it holds)."""
        return int(self.pragma("freelist_count"))

    def size_bytes(self) -> int:
        return self.file_bytes()

    def notify(self, conn: Connection, topic: str, payload: str) -> None:
        """Nothing to send: a FileListener sees the commit itself."""

    def listen(self) -> FileListener:
        try:
            return FileListener(self.path)
        except sqlite3.Error as exc:
            raise self.error("watch", exc) from exc

    def file_bytes(self) -> int:
        """The store's size on disk: the main file and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    @contextlib.contextmanager
    def checkpoints_aside(self) -> Iterator[WalCheckpoints]:
        """For a long run of writes from a worker thread (a prune): while inside, a commit on
        this connection never checkpoints by itself (wal_autocheckpoint 0); the caller does,
        with the WalCheckpoints it is given. Otherwise the commit that crosses the
        autocheckpoint mark copies the WAL into the file, fsyncs included, and that commit
        may well be the event loop's next append."""
        conn = self._require()
        with self._lock:
            before = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        side: sqlite3.Connection | None = None
        try:
            try:
                side = sqlite3.connect(str(self.path), timeout=self.busy_timeout_ms / 1000.0,
                                       check_same_thread=False, isolation_level=None)
            except sqlite3.Error as exc:
                raise self.error("checkpoint", exc) from exc
            yield WalCheckpoints(self, side)
        finally:
            if side is not None:
                side.close()
            with self._lock:
                if self._conn is not None:
                    self._conn.execute(f"PRAGMA wal_autocheckpoint = {before}")

    def reclaim_space(self, pages: int) -> int:
        """Give up to `pages` free pages back to the file system (PRAGMA incremental_vacuum,
        its own short transaction: SQLite moves pages from the end of the file into the free
        ones and truncates); returns how many went. 0 when none are free, or when the file is
        not incremental (`vacuum_owed` says why)."""
        if self._batch_owner == threading.get_ident():
            raise StoreError(f"cannot vacuum the state store {self.path} inside a batch")

        def run() -> int:
            conn = self._require()
            before = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            if not before or int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != AUTO_VACUUM_INCREMENTAL:
                return 0
            # executescript steps the PRAGMA to its end (execute() would free one page per call)
            conn.executescript(f"PRAGMA incremental_vacuum({max(1, int(pages))});")
            return before - int(conn.execute("PRAGMA freelist_count").fetchone()[0])

        return self._retry("vacuum", run)
