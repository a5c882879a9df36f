"""The PostgreSQL backend: one store that the hosts and consoles of many machines share.

psycopg 3 with a small connection pool (psycopg_pool). The repositories are the same as on
SQLite (backend.py); what this file adds is what PostgreSQL does differently:

- Placeholders: the repositories write `?`; psycopg wants `%s` (and a literal `%` doubled).
- Writers are serialised per store, as SQLite's `BEGIN IMMEDIATE` serialises them per file:
  every write transaction first takes a transaction-scoped advisory lock keyed by the
  store's schema. The repositories' read-then-write rules (the journal's chain tip, the
  lease, a proposal's decision) then hold on PostgreSQL exactly as they do on SQLite, under
  READ COMMITTED, with no retry loop for serialisation failures.
- A failed statement aborts a PostgreSQL transaction, so the one conflict the repositories
  expect (the journal's next id taken) runs inside a savepoint (`PgDialect.savepoint`).
- Where: the store lives in the connection's current schema (`search_path`, which a URL may
  set with `?options=-csearch_path%3Dname`), so one database can hold several stores.

Messages name the store by its URL without the password. A psycopg error that escapes is
re-raised as StoreError, one sentence. Nothing of SQLite's file maintenance applies here
(`maintenance` is None): PostgreSQL's autovacuum gives deleted rows' space back."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from .backend import Connection, Cursor, Dialect, Row
from .pg_migrations import MIGRATIONS, SCHEMA_VERSION
from .records import StoreError

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
POOL_SIZE = 4  # the host's loop, its worker threads and a prune rarely need more at once


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """A statement with `?` placeholders in psycopg's spelling."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgRow(tuple[Any, ...]):
    """A row readable by position and by column name, as sqlite3.Row is."""

    _names: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[_PgRow]:
    return type("PgRow", (_PgRow,), {"_names": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    description = cursor.description
    if description is None:
        return tuple
    return _row_class(tuple(column.name for column in description))


class _PgConnection:
    """backend.Connection over a psycopg connection: `?` placeholders."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.notices: dict[str, str] = {}  # topic -> payload, sent once just before the commit

    def send_notices(self, channel: str) -> None:
        for topic, payload in self.notices.items():
            self.raw.execute("SELECT pg_notify(%s, %s)", (channel, f"{topic}:{payload}"))
        self.notices.clear()

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(_pg(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(_pg(sql), [tuple(p) for p in params])
        return cursor


class PgDialect:
    """PostgreSQL's spelling of what differs (backend.Dialect)."""

    integrity_errors: tuple[type[BaseException], ...] = (psycopg.IntegrityError,)

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        updates = [c for c in columns if c not in keys]
        action = f"UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in updates)}" if updates else "NOTHING"
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
                f"ON CONFLICT ({', '.join(keys)}) DO {action}")

    def contains(self, column: str) -> str:
        return f"strpos(lower({column}), lower(?)) > 0"

    def insert_id(self, conn: Connection, sql: str, params: Sequence[Any]) -> int:
        row = conn.execute(f"{sql} RETURNING id", params).fetchone()
        return int(row[0])

    def insert_rows(self, conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY: about half an executemany's cost per row (bench/store_pg.py)."""
        assert isinstance(conn, _PgConnection)
        with conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def savepoint(self, conn: Connection) -> Iterator[None]:
        """A failed statement inside leaves the transaction usable (rolled back to here)."""
        conn.execute("SAVEPOINT oneiric_step")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO SAVEPOINT oneiric_step")
            raise
        conn.execute("RELEASE SAVEPOINT oneiric_step")


def redacted(url: str) -> str:
    """The URL as messages show it: no password, no query (it may carry one too)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _one(conn: psycopg.Connection[Any], sql: str) -> Any:
    """The one value a query of one row gives."""
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _reason(exc: BaseException) -> str:
    """psycopg's message, on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")


class PgListener:
    """A PostgreSQL store's Listener: a connection of its own LISTENs on the store's channel.
    A notice is delivered when the writer's transaction commits. When the connection drops,
    the next wait reconnects and says `reconnected` (what came meanwhile was missed: read)."""

    def __init__(self, url: str, channel: str, connect_timeout_s: int) -> None:
        self._url, self._channel, self._timeout = url, channel, connect_timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._connect()

    def _connect(self) -> None:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)
        conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._channel)))
        self._conn = conn

    def wait(self, timeout: float) -> list[str]:
        try:
            if self._conn is None or self._conn.closed:
                self._connect()
                return ["reconnected"]
            got = [n.payload for n in self._conn.notifies(timeout=max(0.0, timeout), stop_after=1)]
            if got:  # whatever else came with it, without waiting
                got += [n.payload for n in self._conn.notifies(timeout=0.0)]
            return got
        except psycopg.Error:
            with contextlib.suppress(psycopg.Error):
                if self._conn is not None:
                    self._conn.close()
            self._conn = None
            time.sleep(min(1.0, max(0.0, timeout)))
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PgBackend:
    """A store in one schema of a PostgreSQL database (backend.Backend). Safe to use from
    many threads: each takes a pooled connection per statement or transaction; a thread
    inside `batch` or `read_snapshot` keeps its own until the block ends."""

    def __init__(self, url: str, *, connect_timeout_s: int = CONNECT_TIMEOUT_S, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._where = redacted(url)
        self.dialect: Dialect = PgDialect()
        self.holds_one_node = False
        self.read_only = False
        self.write_failure: str | None = None
        self._local = threading.local()
        self._rollback_hooks: list[Callable[[], None]] = []
        self._closed = False
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": _row_factory,
                                  "connect_timeout": connect_timeout_s}
        try:
            first: psycopg.Connection[Any]
            with psycopg.connect(url, autocommit=True, row_factory=_row_factory,
                                 connect_timeout=connect_timeout_s) as first:
                schema = first.execute("SELECT current_schema()").fetchone()
                if schema is None or schema[0] is None:
                    raise StoreError(f"cannot open the state store {self._where}: its search_path names no "
                                     "schema that exists (create the schema, or leave search_path alone)")
                self.schema = str(schema[0])
                self._lock_key = zlib.crc32(f"oneiric-store:{self.schema}".encode())
                self._migrate(first)
                self.read_only = not _one(first, "SELECT has_table_privilege('journal', 'INSERT')")
        except psycopg.Error as exc:
            raise self.error("open", exc) from exc
        if self.read_only:
            self.write_failure = f"this database role may read the state store {self._where} but not write it"
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url, kwargs=kwargs, min_size=1, max_size=pool_size, open=False, name="oneiric-store",
            timeout=float(connect_timeout_s))
        try:
            self._pool.open(wait=True, timeout=float(connect_timeout_s))
        except PoolTimeout as exc:
            raise self.error("open", exc) from exc

    # ------------------------------------------------------------------ schema

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        if self._version(conn) == SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            conn.execute("CREATE TABLE IF NOT EXISTS oneiric_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM oneiric_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO oneiric_schema (version) VALUES (0)")
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open the state store {self._where}: it has schema version {version} "
                    f"but this program knows only up to {SCHEMA_VERSION}, so upgrade the program")
            wrapped = _PgConnection(conn)
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index]:
                    if callable(statement):
                        statement(wrapped)
                    else:
                        conn.execute(statement)
                conn.execute("UPDATE oneiric_schema SET version = %s", (index + 1,))

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        if _one(conn, "SELECT to_regclass('oneiric_schema')") is None:
            return 0
        row = conn.execute("SELECT version FROM oneiric_schema").fetchone()
        return 0 if row is None else int(row[0])

    @property
    def schema_version(self) -> int:
        rows = self.read("SELECT version FROM oneiric_schema")
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------------ plumbing

    @property
    def where(self) -> str:
        return self._where

    @property
    def maintenance(self) -> None:
        return None

    def error(self, action: str, exc: BaseException) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        return StoreError(f"cannot {action} the state store {self._where}: {_reason(exc)}")

    def _held(self) -> _PgConnection | None:
        """The connection this thread's open batch or snapshot runs on."""
        return getattr(self._local, "conn", None)

    @contextlib.contextmanager
    def _connection(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StoreError(f"cannot use the state store {self._where}: it is closed")
        try:
            with self._pool.connection() as raw:
                yield raw
        except psycopg.Error as exc:
            raise self.error(action, exc) from exc
        except PoolTimeout as exc:
            raise self.error(action, exc) from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        held = self._held()
        if held is not None:
            try:
                return held.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                raise self.error("read", exc) from exc
        with self._connection("read") as raw:
            return raw.execute(_pg(sql), tuple(params)).fetchall()

    def write(self, fn: Callable[[Connection], T], *, action: str = "write") -> T:
        """One transaction, holding the store's write lock, running `fn`; rolled back if it raises."""
        held = self._held()
        if held is not None:
            if getattr(self._local, "snapshot", False):
                raise StoreError(f"cannot {action} the state store {self._where} inside a read snapshot")
            try:
                return fn(held)
            except psycopg.Error as exc:
                raise self.error(action, exc) from exc
        with self._connection(action) as raw:
            try:
                with raw.transaction():
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    conn = _PgConnection(raw)
                    result = fn(conn)
                    conn.send_notices(self.channel)
                    return result
            except BaseException:
                self._rolled_back()
                raise

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The writes inside make one transaction (and the reads inside see them)."""
        if self._held() is not None:
            yield
            return
        with self._connection("write") as raw:
            try:
                with raw.transaction():
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    conn = self._local.conn = _PgConnection(raw)
                    try:
                        yield
                        conn.send_notices(self.channel)
                    finally:
                        self._local.conn = None
            except BaseException:
                self._rolled_back()
                raise

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store (REPEATABLE READ), whatever others commit."""
        if self._held() is not None:
            yield
            return
        with self._connection("read") as raw, raw.transaction():
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._local.conn, self._local.snapshot = _PgConnection(raw), True
            try:
                yield
            finally:
                self._local.conn, self._local.snapshot = None, False

    def in_batch(self) -> bool:
        return self._held() is not None and not getattr(self._local, "snapshot", False)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        self._rollback_hooks.append(callback)

    def _rolled_back(self) -> None:
        for hook in self._rollback_hooks:
            hook()

    def data_version(self) -> int:
        """Changes whenever a transaction commits anywhere in the cluster (the snapshot's
        running set changes): more often than SQLite's, never less."""
        rows = self.read("SELECT pg_current_snapshot()::text")
        return zlib.crc32(str(rows[0][0]).encode())

    def size_bytes(self) -> int:
        """What the store's tables and indexes take on the server."""
        rows = self.read(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'r'",
            (self.schema,))
        return int(rows[0][0])

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this store (one per schema)."""
        return f"oneiric_{self.schema}"[:63]

    def notify(self, conn: Connection, topic: str, payload: str) -> None:
        """Sent once per transaction and topic, with the last payload, as it commits."""
        if isinstance(conn, _PgConnection):
            conn.notices[topic] = payload
        else:
            conn.execute("SELECT pg_notify(?, ?)", (self.channel, f"{topic}:{payload}"))

    def listen(self) -> PgListener:
        try:
            return PgListener(self.url, self.channel, CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise self.error("listen to", exc) from exc

    def close(self) -> None:
        """Close the pool (idempotent); later calls raise StoreError."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
