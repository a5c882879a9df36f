"""The state store: one SQLite file every process of a state dir shares.

It holds the journal (every Event), the activity table (paused / draining keys), the
lifecycle and health snapshots the host writes for its clients, the host lease and a small
key/value table. Several processes (the host, consoles, CLI invocations) open the same file,
so the file runs in WAL mode, every write is a `BEGIN IMMEDIATE` transaction (a writer takes
the write lock up front and waits for it under `busy_timeout` instead of failing half way),
and a busy/locked error is retried a few times with a short backoff before it is reported.

Within one process a single connection is shared by every thread under an `RLock`.
Any sqlite3 error that escapes is re-raised as `StoreError`, one sentence naming the file
and the reason. The schema is versioned with `PRAGMA user_version` and grows through the
ordered `MIGRATIONS` list: append to it, never edit an entry that has shipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from . import private_files
from .disk_faults import explain_write_failure
from .domains import Domain
from .errors import ExitCode, OneiricError, UsageError
from .events import Event, Severity
from .journal_hash import GENESIS, row_hash
from .seal import RowSeal

T = TypeVar("T")


class StoreError(OneiricError):
    """The state store cannot be opened, read or written (full disk, read-only file, corruption)."""

    exit_code = ExitCode.ERROR


# The hash chain over the journal (journal_hash.py defines what a hash covers). Meta keys:
ANCHOR_META = "journal_anchor"  # {"id", "hash"}: what the first row chains to (the last pruned row)
SEALED_META = "journal_sealed_through"  # the last id written before the chain existed
HEAD_META = "journal_head"  # {"id", "hash", "at"}: the head the host last published
IDS_META = "journal_ids_used_through"  # ids up to this one were given out before schema 7 (see below)
PRUNE_PROGRESS_META = "journal_prune_progress"  # written by a running prune (store.WalCheckpoints)
VACUUM_META = "store_incremental_vacuum"  # {"failed_at", "reason"}: the one-time VACUUM of schema 8 is owed
_CHAIN_COLUMNS = "id, ts, kind, severity, domain, key, provider, actor, outcome, duration_ms, message, data"


def _seal_journal(conn: sqlite3.Connection) -> None:
    """Chain the rows written before the chain existed, oldest first from GENESIS, so later
    edits of them are caught too (what they said before the upgrade is taken as found).
    Ids may have gaps among them (an older prune went by age alone); `SEALED_META` tells
    verification so. The anchor sits just before the first row."""
    rows = conn.execute(f"SELECT {_CHAIN_COLUMNS} FROM journal ORDER BY id").fetchall()
    prev, updates = GENESIS, []
    for row in rows:
        digest = row_hash(prev, row[0], tuple(row)[1:])
        updates.append((prev, digest, row[0]))
        prev = digest
    conn.executemany("UPDATE journal SET prev_hash = ?, hash = ? WHERE id = ?", updates)
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    anchor_id = rows[0][0] - 1 if rows else (seq[0] if seq else 0)
    sealed = rows[-1][0] if rows else anchor_id
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
        (ANCHOR_META, json.dumps({"id": anchor_id, "hash": GENESIS})), (SEALED_META, json.dumps(sealed))])


def _journal_ids_by_the_chain(conn: sqlite3.Connection) -> None:
    """Rebuild the journal without AUTOINCREMENT: the chain gives each row its id (the next
    one past its tip, store.append_many), so SQLite's own counter was one more B-tree write
    in every append (about a sixth of an append's cost, bench/journal_append.py) and said
    nothing the chain does not. The highest id it had given out is kept in meta when rows
    at the end had been deleted, so no id is ever given out twice."""
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    conn.execute(_JOURNAL_TABLE.format(name="journal_by_chain"))
    conn.execute(f"INSERT INTO journal_by_chain ({_CHAIN_COLUMNS}, prev_hash, hash) "
                 f"SELECT {_CHAIN_COLUMNS}, prev_hash, hash FROM journal")
    conn.execute("DROP TABLE journal")
    conn.execute("ALTER TABLE journal_by_chain RENAME TO journal")
    for statement in _JOURNAL_INDEXES:
        conn.execute(statement)
    top = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0] or 0
    if seq is not None and int(seq[0]) > top:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (IDS_META, json.dumps(int(seq[0]))))


def _want_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """A store made before schema 8 gives no space back when rows go (auto_vacuum NONE): it
    needs `auto_vacuum = INCREMENTAL`, which SQLite takes on a file with tables only through a
    VACUUM, and a VACUUM cannot run inside this transaction. So this step only notes that one is
    owed; `StateStore._owed_vacuum` runs it right after the migration commits (stores made by
    schema 8 and later are created incremental and owe nothing)."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != AUTO_VACUUM_INCREMENTAL:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (VACUUM_META, json.dumps({})))


AUTO_VACUUM_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
VACUUM_RETRY_S = 3600.0  # a one-time VACUUM that failed (a full disk) is tried again at an open after this


# The journal as schema 7 keeps it (migration 1 made it with AUTOINCREMENT; 5 added the chain).
_JOURNAL_TABLE = """CREATE TABLE {name} (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    domain TEXT,
    key TEXT,
    provider TEXT,
    actor TEXT,
    outcome TEXT,
    duration_ms REAL,
    message TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{{}}',
    prev_hash TEXT,
    hash TEXT
)"""
_JOURNAL_INDEXES = (
    "CREATE INDEX IF NOT EXISTS journal_ts ON journal(ts)",
    "CREATE INDEX IF NOT EXISTS journal_kind ON journal(kind)",
    "CREATE INDEX IF NOT EXISTS journal_ref ON journal(domain, key)",
)


# Each entry moves the schema from version i to i+1 (user_version counts applied entries). A
# step is an SQL statement, or a function run on the connection inside the same transaction
# (for what SQL alone cannot do, such as hashing the rows already there).
Migration = Sequence[str | Callable[[sqlite3.Connection], None]]
MIGRATIONS: list[Migration] = [
    # 1: journal, activity, snapshots, lease, meta
    (
        """CREATE TABLE IF NOT EXISTS journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            domain TEXT,
            key TEXT,
            provider TEXT,
            actor TEXT,
            outcome TEXT,
            duration_ms REAL,
            message TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS journal_ts ON journal(ts)",
        "CREATE INDEX IF NOT EXISTS journal_kind ON journal(kind)",
        "CREATE INDEX IF NOT EXISTS journal_ref ON journal(domain, key)",
        """CREATE TABLE IF NOT EXISTS activity (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            note TEXT,
            actor TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE IF NOT EXISTS lifecycle (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            provider TEXT,
            source TEXT,
            pending_provider TEXT,
            last_error TEXT,
            inflight INTEGER NOT NULL DEFAULT 0,
            last_swap TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE IF NOT EXISTS health (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            provider TEXT,
            status TEXT NOT NULL,
            latency_ms REAL,
            message TEXT NOT NULL DEFAULT '',
            checked_at REAL NOT NULL,
            changed_at REAL NOT NULL,
            samples TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE IF NOT EXISTS lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pid INTEGER NOT NULL,
            hostname TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    ),
    # 2: swap proposals (change control)
    (
        """CREATE TABLE IF NOT EXISTS proposals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            from_provider TEXT,
            to_provider TEXT NOT NULL,
            to_source TEXT,
            force INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            requested_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            status TEXT NOT NULL,
            decided_by TEXT,
            decided_at REAL,
            comment TEXT,
            outcome TEXT,
            outcome_reason TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS proposals_status ON proposals(status)",
    ),
    # 3: the command queue clients use to ask the host to act (commands.py)
    (
        """CREATE TABLE IF NOT EXISTS commands (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            requested_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            deadline REAL,
            status TEXT NOT NULL DEFAULT 'pending',
            started_at REAL,
            result TEXT,
            exit_code INTEGER,
            finished_at REAL
        )""",
        "CREATE INDEX IF NOT EXISTS commands_status ON commands(status, id)",
    ),
    # 4: incidents and their timelines (runbooks/incidents.py)
    (
        """CREATE TABLE IF NOT EXISTS incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            commander TEXT NOT NULL,
            opened_at REAL NOT NULL,
            closed_at REAL,
            refs TEXT NOT NULL DEFAULT '[]',
            tree TEXT,
            summary TEXT NOT NULL DEFAULT '',
            impact TEXT NOT NULL DEFAULT '',
            root_cause TEXT NOT NULL DEFAULT '',
            resolution TEXT NOT NULL DEFAULT '',
            follow_ups TEXT NOT NULL DEFAULT '[]'
        )""",
        """CREATE TABLE IF NOT EXISTS incident_timeline (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            text TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS incident_timeline_incident ON incident_timeline(incident_id, id)",
    ),
    # 5: the journal becomes a hash chain (journal_hash.py, journal_chain.py)
    (
        "ALTER TABLE journal ADD COLUMN prev_hash TEXT",
        "ALTER TABLE journal ADD COLUMN hash TEXT",
        _seal_journal,
    ),
    # 6: verified principals and seals (principal.py, seal.py): the rules compare the ids, and
    # a row whose seal does not match was not written by the host and is never acted on
    (
        "ALTER TABLE proposals ADD COLUMN requested_by_id TEXT",
        "ALTER TABLE proposals ADD COLUMN decided_by_id TEXT",
        "ALTER TABLE proposals ADD COLUMN seal TEXT",
        "ALTER TABLE commands ADD COLUMN requested_by_id TEXT",
        "ALTER TABLE commands ADD COLUMN seal TEXT",
    ),
    # 7: the chain gives the journal its ids (no AUTOINCREMENT)
    (_journal_ids_by_the_chain,),
    # 8: pruned rows give their space back to the file system (auto_vacuum INCREMENTAL; the
    # VACUUM that switches an older store runs after the migration's transaction)
    (_want_incremental_vacuum,),
]

SCHEMA_VERSION = len(MIGRATIONS)

# A host renews its lease every second; one this old belongs to a host that is gone (or hung),
# and another process may take over. Clients use it to tell whether a host is running.
LEASE_STALE_AFTER_S = 5.0

ACTIVITY_STATES = ("active", "paused", "draining", "drained")

# Journal retention: rows per prune transaction and pages per incremental vacuum when the
# store prunes by itself (prune_journal; retention.py sizes the host's steps to a time instead).
PRUNE_BATCH_ROWS = 5000
RECLAIM_BATCH_PAGES = 400
RESTART_FRAMES = 1000  # a prune starts the WAL over once it holds this many frames (WalCheckpoints)
# An open incident keeps every event from this long before it opened (its timeline's start).
INCIDENT_WINDOW_LEAD_S = 1.0
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
# SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: what a full or read-only disk looks like
_DISK_CODES = frozenset({8, 10, 13, 14})
_RETRIES = 6


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class ActivityRecord:
    domain: str
    key: str
    state: str  # "active" | "paused" | "draining" | "drained"
    note: str | None = None
    actor: str | None = None
    updated_at: float = 0.0


@dataclass(slots=True)
class LifecycleSnapshot:
    domain: str
    key: str
    state: str
    provider: str | None
    source: str | None
    pending_provider: str | None = None
    last_error: str | None = None
    inflight: int = 0
    last_swap: dict[str, Any] | None = None
    updated_at: float = 0.0


@dataclass(slots=True)
class HealthSnapshot:
    domain: str
    key: str
    provider: str | None
    status: str
    latency_ms: float | None
    message: str
    checked_at: float
    changed_at: float
    samples: list[float | None] = field(default_factory=list)  # recent latencies, oldest first


@dataclass(slots=True)
class ProposalRecord:
    """A requested swap waiting for (or past) a decision; see approvals.py for the rules."""

    domain: str
    key: str
    from_provider: str | None
    to_provider: str
    source: str  # who proposed it: console, cli, watcher, remote, runbook
    requested_by: str
    created_at: float
    status: str = "pending"  # pending | approved | rejected | expired | applied | failed | interrupted
    to_source: str | None = None
    force: bool = False
    reason: str = ""
    expires_at: float | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    outcome: str | None = None
    outcome_reason: str | None = None
    id: int | None = None
    requested_by_id: str | None = None  # the principal ids the rules compare (principal.py)
    decided_by_id: str | None = None
    # Whether the row's seal matched when it was read: None when this process holds no key to
    # check it with (seal.py); never stored.
    sealed: bool | None = None


@dataclass(slots=True)
class CommandRecord:
    """One request from a client to the host (see commands.py for the kinds and the loop)."""

    kind: str
    args: dict[str, Any]
    requested_by: str
    created_at: float
    deadline: float | None = None  # after this the client no longer waits: never start it
    status: str = "pending"  # pending | running | done | failed | expired
    started_at: float | None = None
    result: dict[str, Any] | None = None  # {"message": str, "data": {...}}
    exit_code: int | None = None
    finished_at: float | None = None
    id: int | None = None
    requested_by_id: str | None = None
    sealed: bool | None = None  # as ProposalRecord.sealed


@dataclass(slots=True)
class LeaseInfo:
    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float

    def is_stale(self, now: float, stale_after_s: float) -> bool:
        """True when the holder has not heartbeaten for longer than `stale_after_s`."""
        return now - self.heartbeat_at > stale_after_s


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One point of the journal's hash chain: a row's id and hash (the anchor, the head).
    `at` is when a host published it as its head (None for any other link)."""

    id: int
    hash: str
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "hash": self.hash}
        if self.at is not None:
            out["at"] = self.at
        return out


@dataclass(frozen=True, slots=True)
class RetentionHold:
    """An open incident that the journal's retention may not prune past: `first_id` is the
    first row it keeps (an event of a component it involves, or one since it opened)."""

    incident: int
    title: str
    opened_at: float
    first_id: int
    ref: str | None  # "domain/key" when the row is kept as one of that component's events

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "title": self.title, "opened_at": self.opened_at,
                "first_id": self.first_id, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one prune transaction did: rows `deleted`, whether retention has nothing more to
    take now (`done`), and the open incident that stopped it, if one did."""

    deleted: int
    done: bool
    held_by: RetentionHold | None = None


class ChainState(NamedTuple):
    """Where the journal's chain starts and what it must reach, as the store keeps them."""

    anchor: ChainLink  # what the first row chains to: the last pruned row, or GENESIS
    sealed_through: int  # the last id written before the chain existed (ids may skip up to it)
    published: ChainLink | None  # the head the host last published


class _ChainTip(NamedTuple):  # a NamedTuple: one is made per append
    """What the next append chains to, as this connection last saw it: the last chained row
    (`id`, `hash`) and the id to give the next row. It holds until another connection
    appends, and then the next row's id is taken: the insert's PRIMARY KEY conflict is what
    says so (store.append_many)."""

    id: int
    hash: str
    next_id: int


class WalCheckpoints:
    """Checkpoints taken by hand during a long run of writes (StateStore.checkpoints_aside).

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

    def __init__(self, store: StateStore, side: sqlite3.Connection) -> None:
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
                raise self._store._error("checkpoint", exc) from exc
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
                        raise store._error("checkpoint", exc) from exc
                spent = time.perf_counter() - t0
            yield spent


# --------------------------------------------------------------------------- helpers


def _dom(value: Domain | str | None) -> str | None:
    """Store a domain as its singular value; accept `adapter`, `adapters` or a Domain."""
    if value is None:
        return None
    if isinstance(value, Domain):
        return value.value
    try:
        return Domain.parse(value).value
    except OneiricError:
        return str(value)


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The id the INSERT just run on `cursor` gave its row (`lastrowid` is None only on a
    cursor that inserted nothing)."""
    row_id = cursor.lastrowid
    if row_id is None:
        raise sqlite3.DatabaseError("the INSERT gave no row id")
    return row_id


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


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _link(raw: Any) -> ChainLink | None:
    """A ChainLink from its meta JSON ({"id", "hash"[, "at"]}); None when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int) or not isinstance(raw.get("hash"), str):
        return None
    at = raw.get("at")
    return ChainLink(raw["id"], raw["hash"], float(at) if isinstance(at, (int, float)) else None)


def _event_from_row(row: sqlite3.Row) -> Event:
    domain: Domain | None = None
    if row["domain"]:
        try:
            domain = Domain.parse(row["domain"])
        except OneiricError:
            domain = None
    try:
        severity = Severity(row["severity"] or "info")
    except ValueError:
        severity = Severity.INFO
    data = _loads(row["data"], {})
    return Event(
        kind=row["kind"],
        message=row["message"] or "",
        severity=severity,
        domain=domain,
        key=row["key"],
        provider=row["provider"],
        actor=row["actor"],
        outcome=row["outcome"],
        duration_ms=row["duration_ms"],
        data=data if isinstance(data, dict) else {"value": data},
        ts=row["ts"],
        id=row["id"],
    )


_PLAIN_TEXT = frozenset({str, type(None)})
# The `data` column's JSON, as json.dumps(data, default=str, separators=(",", ":")) writes it,
# from one encoder built once: json.dumps with options builds a new one per call, which cost
# as much as hashing the row does (bench/journal_append.py).
_DATA_JSON = json.JSONEncoder(default=str, separators=(",", ":")).encode


def _text(value: Any) -> str | None:
    """A TEXT column's value as SQLite will hand it back (a str subclass as its plain str)."""
    if value is None or type(value) is str:
        return value
    return str.__str__(value) if isinstance(value, str) else str(value)


def _event_params(event: Event) -> tuple[Any, ...]:
    """The stored columns (ts .. data) exactly as they will read back: the row's hash is
    computed from these, so nothing may change on the way through SQLite (a number in a
    TEXT column would come back as text, an int duration as a float, a NaN one as NULL).
    Written for the append path: the checks cost little when, as always, nothing is odd."""
    severity = event.severity.value if isinstance(event.severity, Severity) else str(event.severity)
    kind, key, provider, actor, outcome = event.kind, event.key, event.provider, event.actor, event.outcome
    if (kind.__class__ is not str or key.__class__ not in _PLAIN_TEXT or provider.__class__ not in _PLAIN_TEXT
            or actor.__class__ not in _PLAIN_TEXT or outcome.__class__ not in _PLAIN_TEXT):
        kind, key, provider, actor, outcome = (str(_text(kind)), _text(key), _text(provider), _text(actor),
                                               _text(outcome))
    message = event.message or ""
    if message.__class__ is not str:
        message = str(_text(message))
    duration = event.duration_ms
    if duration is not None and duration.__class__ is not float:
        duration = float(duration)
    return (
        float(event.ts), kind, severity, _dom(event.domain), key, provider, actor, outcome,
        None if duration != duration else duration,  # NaN: what the REAL column stores is NULL
        message, _DATA_JSON(event.data or {}),
    )


# --------------------------------------------------------------------------- the store


class StateStore:
    """The shared SQLite state file. Safe to use from many threads and many processes."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._lock = threading.RLock()
        self._batch_owner: int | None = None  # thread id inside batch(), if any
        self._conn: sqlite3.Connection | None = None
        # The key that seals proposal and command rows (seal.py); set by the engine. Without
        # one, rows read back with `sealed=None` and sealed rows cannot be written.
        self.seal: RowSeal | None = None
        self._tip: _ChainTip | None = None  # the journal's chain tip as last seen (append_many)
        self.last_published_head: ChainLink | None = None  # what this process published last
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
                    raise exc if isinstance(exc, StoreError) else self._error("open", exc) from exc

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

        self._write(run, action="migrate")
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
        owed = self.get_meta(VACUUM_META)
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
            self._write(lambda conn: conn.execute("DELETE FROM meta WHERE key = ?", (VACUUM_META,)))
        except StoreError as exc:
            with contextlib.suppress(StoreError):
                self.set_meta(VACUUM_META, {"failed_at": time.time(), "reason": str(exc)})

    def vacuum_owed(self) -> str | None:
        """Why pruned rows do not give their space back, or None when they do."""
        if self.auto_vacuum() == AUTO_VACUUM_INCREMENTAL:
            return None
        owed = self.get_meta(VACUUM_META)
        reason = owed.get("reason") if isinstance(owed, dict) else None
        return (f"the store predates incremental vacuum and its one-time VACUUM failed ({reason})" if reason
                else "the store's auto_vacuum is not INCREMENTAL")

    def _require(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StoreError(f"cannot use the state store {self.path}: it is closed")
        return conn

    def _error(self, action: str, exc: BaseException) -> StoreError:
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
                        raise self._error(action, exc) from exc
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
                self._tip = None  # it may name rows that were just rolled back
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._error("write", exc) from exc
            except BaseException:
                self._tip = None
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._batch_owner = None

    def _write(self, fn: Callable[[sqlite3.Connection], T], *, action: str = "write") -> T:
        """One `BEGIN IMMEDIATE` transaction running `fn`; rolled back if anything raises."""
        if self._batch_owner == threading.get_ident():
            try:
                return fn(self._require())
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc

        def attempt() -> T:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                self._tip = None  # it may name rows that were just rolled back
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise

        return self._retry(action, attempt)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
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

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise StoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self._error("close", exc) from exc

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ journal

    _INSERT_EVENT = (
        f"INSERT INTO journal ({_CHAIN_COLUMNS}, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def append(self, event: Event) -> Event:
        """Store one event; sets and returns it with `event.id`."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events in one transaction, in order; each gets its `id` and is chained to
        the one before it (journal_hash.py). The tip is checked inside the write transaction,
        so appends from several processes queue up on one chain and never fork it."""
        batch = list(events)
        if not batch:
            return batch
        params = [_event_params(e) for e in batch]

        def run(conn: sqlite3.Connection) -> int:
            tip = self._tip or self._chain_tip(conn)
            self._tip = None  # until every row below is in: a failure half way reads the end again
            inserted: list[int] = []
            try:
                self._tip = self._insert_chained(conn, tip, params, inserted)
            except sqlite3.IntegrityError:
                # The next id is taken: another connection appended since this one last did.
                # Rows inserted before the conflict (none, unless someone wrote a row at a
                # later id around the store) are this call's own; they go, and the chain is
                # continued from its real end.
                conn.executemany("DELETE FROM journal WHERE id = ?", [(i,) for i in inserted])
                tip = self._chain_tip(conn)
                self._tip = self._insert_chained(conn, tip, params, [])
            return tip.next_id

        first = self._write(run)
        for offset, event in enumerate(batch):
            event.id = first + offset
        return batch

    def _insert_chained(self, conn: sqlite3.Connection, tip: _ChainTip, params: list[tuple[Any, ...]],
                        inserted: list[int]) -> _ChainTip:
        """Insert the rows after `tip` with explicit ids, each hashed onto the one before,
        noting each id in `inserted`; returns the new tip. An IntegrityError means an id was
        taken (the tip was stale)."""
        prev, next_id = tip.hash, tip.next_id
        for p in params:
            digest = row_hash(prev, next_id, p)
            conn.execute(self._INSERT_EVENT, (next_id, *p, prev, digest))
            inserted.append(next_id)
            prev, next_id = digest, next_id + 1
        return _ChainTip(next_id - 1, prev, next_id)

    def _chain_tip(self, conn: sqlite3.Connection) -> _ChainTip:
        """What the next row chains to, read from the file; call inside a write transaction
        (which is what keeps two processes from chaining to the same row: the second waits
        for the write lock and then sees the first one's row). The last chained row, or the
        anchor when none is left, and the next id past every id ever given out (the rows',
        the published head's, the one migration 7 kept), so rows deleted at the end leave a
        gap that verification names.

        append_many reads it only when it holds no tip of its own or its tip went stale; a
        check on every append (`PRAGMA data_version`, a trigger) cost more than the hash
        itself (bench/README.md)."""
        row = conn.execute("SELECT id, hash FROM journal WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        last = ChainLink(int(row[0]), str(row[1])) if row is not None else self._anchor(conn)
        top = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
        given = {k: _loads(v, None) for k, v in conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (HEAD_META, IDS_META))}
        head = _link(given.get(HEAD_META))
        floor = given.get(IDS_META)
        used = max(last.id, int(top or 0), head.id if head else 0, floor if isinstance(floor, int) else 0)
        return _ChainTip(last.id, last.hash, used + 1)

    @classmethod
    def _chain_tip_below(cls, conn: sqlite3.Connection, through: int) -> str:
        """The hash of the last chained row at or below `through` (else the anchor's)."""
        row = conn.execute("SELECT hash FROM journal WHERE id <= ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                           (through,)).fetchone()
        return str(row[0]) if row is not None else cls._anchor(conn).hash

    @staticmethod
    def _anchor(conn: sqlite3.Connection) -> ChainLink:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (ANCHOR_META,)).fetchone()
        return _link(_loads(row[0] if row else None, None)) or ChainLink(0, GENESIS)

    def _publish_head(self, conn: sqlite3.Connection, at: float) -> None:
        """Record the chain's head in meta (inside the caller's write transaction) when it
        moved: what `journal verify` checks the journal still reaches."""
        tip = self._chain_tip(conn)
        head = ChainLink(tip.id, tip.hash, at)
        published = self.last_published_head
        if published is not None and (published.id, published.hash) == (head.id, head.hash):
            return
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                     (HEAD_META, json.dumps(head.to_dict())))
        self.last_published_head = head

    def chain_state(self) -> ChainState:
        rows = {r[0]: _loads(r[1], None) for r in self._read(
            "SELECT key, value FROM meta WHERE key IN (?, ?, ?)", (ANCHOR_META, SEALED_META, HEAD_META))}
        sealed = rows.get(SEALED_META)
        return ChainState(_link(rows.get(ANCHOR_META)) or ChainLink(0, GENESIS),
                          sealed if isinstance(sealed, int) else 0, _link(rows.get(HEAD_META)))

    def published_head(self) -> ChainLink | None:
        """The journal head the host last published (in its heartbeat), with when."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (HEAD_META,))
        return _link(_loads(rows[0][0], None)) if rows else None

    def chain_rows(self, after_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` rows after `after_id` in id order, as (id .. data, prev_hash, hash)."""
        rows = self._read(f"SELECT {_CHAIN_COLUMNS}, prev_hash, hash FROM journal WHERE id > ? ORDER BY id LIMIT ?",
                          (int(after_id), int(limit)))
        return [tuple(r) for r in rows]

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

    @staticmethod
    def _filters(
        *,
        after_id: int | None = None,
        kinds: Iterable[str] | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
        since_ts: float | None = None,
        text: str | None = None,
    ) -> tuple[str, list[Any]] | None:
        """A WHERE clause and its parameters; None when the filter can match nothing."""
        clauses: list[str] = []
        params: list[Any] = []
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        if kinds is not None:
            wanted = [kinds] if isinstance(kinds, str) else sorted({str(k) for k in kinds})
            if not wanted:
                return None
            clauses.append(f"kind IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if domain is not None:
            clauses.append("domain = ?")
            params.append(_dom(domain))
        if key is not None:
            clauses.append("key = ?")
            params.append(key)
        if since_ts is not None:
            clauses.append("ts >= ?")
            params.append(float(since_ts))
        if text:
            clauses.append(
                "(oneiric_contains(message, ?) OR oneiric_contains(kind, ?) "
                "OR oneiric_contains(provider, ?) OR oneiric_contains(key, ?))"
            )
            params.extend([text] * 4)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return where, params

    def journal(
        self,
        *,
        limit: int = 200,
        after_id: int | None = None,
        kinds: Iterable[str] | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
        since_ts: float | None = None,
        text: str | None = None,
    ) -> list[Event]:
        """The newest `limit` matching events, returned oldest first.

        `kinds=None` means every kind (an empty collection matches nothing); `text` is a
        case-insensitive substring of the message, kind, provider or key.
        """
        if limit <= 0:
            return []
        built = self._filters(
            after_id=after_id, kinds=kinds, domain=domain, key=key, since_ts=since_ts, text=text
        )
        if built is None:
            return []
        where, params = built
        rows = self._read(f"SELECT * FROM journal{where} ORDER BY id DESC LIMIT ?", [*params, int(limit)])
        return [_event_from_row(row) for row in reversed(rows)]

    def last_journal_id(self) -> int:
        """The highest stored event id, 0 when the journal is empty."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM journal")[0][0])

    def oldest_journal_row(self) -> tuple[int, float] | None:
        """The oldest stored event's id and time, None when the journal is empty."""
        rows = self._read("SELECT id, ts FROM journal ORDER BY id LIMIT 1")
        return (int(rows[0][0]), float(rows[0][1])) if rows else None

    def count_journal(
        self,
        *,
        kind: str | None = None,
        since_ts: float | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
    ) -> int:
        built = self._filters(
            kinds=None if kind is None else [kind], since_ts=since_ts, domain=domain, key=key
        )
        assert built is not None
        where, params = built
        return int(self._read(f"SELECT COUNT(*) FROM journal{where}", params)[0][0])

    def prune_journal(
        self, *, max_age_s: float | None, max_rows: int | None, now: float | None = None
    ) -> int:
        """Delete events older than `max_age_s`, then all but the newest `max_rows`, short of
        what an open incident keeps, and give the space back; returns the count. Runs to the
        end in the calling thread, in transactions of PRUNE_BATCH_ROWS rows: the host prunes
        through retention.py instead, off its event loop and with pauses between them."""
        cutoff = None if max_age_s is None else (time.time() if now is None else now) - max_age_s
        through = self.journal_rows_through(max_rows)
        total = 0
        while True:
            step = self.prune_journal_batch(cutoff=cutoff, rows_through=through, limit=PRUNE_BATCH_ROWS)
            total += step.deleted
            if step.done:
                break
        while self.reclaim_space(RECLAIM_BATCH_PAGES):
            pass
        return total

    def journal_rows_through(self, max_rows: int | None, *, step: int = 20_000) -> int | None:
        """The highest id that "all but the newest `max_rows`" lets go (None: none, or no
        limit). Counted down from the newest row `step` rows per read, so no read holds the
        store for long however large `max_rows` is (OFFSET walks the rows it skips)."""
        if max_rows is None:
            return None
        left, below = max(0, int(max_rows)), None
        while True:
            skip = min(left, step)
            where, params = ("", [skip]) if below is None else ("WHERE id < ? ", [below, skip])
            rows = self._read(f"SELECT id FROM journal {where}ORDER BY id DESC LIMIT 1 OFFSET ?", params)
            if not rows:
                return None
            if skip == left:
                return int(rows[0][0])
            left -= skip
            below = int(rows[0][0])

    def prune_journal_batch(self, *, cutoff: float | None, rows_through: int | None, limit: int) -> PruneStep:
        """One prune transaction over the oldest `limit` rows at most: the rows older than
        `cutoff` (up to the first younger one) or at or below `rows_through` go, except that it
        stops at the first row an open incident keeps (`_first_held_row`).

        Only ever the oldest rows go (a prefix by id), so the chain stays whole, and the last
        row deleted becomes the anchor the first row left is checked against. That is also
        why an open incident holds back everything after its first kept row, not just its
        own rows: a row deleted between kept ones would be a hole `journal verify` names."""
        limit = max(1, int(limit))

        def run(conn: sqlite3.Connection) -> PruneStep:
            edge = conn.execute("SELECT id FROM journal ORDER BY id LIMIT 1 OFFSET ?", (limit - 1,)).fetchone()
            last_id = int(edge[0]) if edge is not None else conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
            if last_id is None:
                return PruneStep(0, True)
            through: int | None = None  # the highest id to delete in this batch
            if cutoff is not None:
                young = conn.execute("SELECT id FROM journal WHERE id <= ? AND ts >= ? ORDER BY id LIMIT 1",
                                     (last_id, cutoff)).fetchone()
                through = last_id if young is None else int(young[0]) - 1
            if rows_through is not None:
                through = max(through if through is not None else -(1 << 62), min(last_id, rows_through))
            if through is None:
                return PruneStep(0, True)
            held = self._first_held_row(conn, through)
            if held is not None:
                through = held.first_id - 1
            last = conn.execute("SELECT id, hash FROM journal WHERE id <= ? ORDER BY id DESC LIMIT 1",
                                (through,)).fetchone()
            if last is None:
                return PruneStep(0, True, held)
            # the last pruned row's hash; a row without one (written around the store) chains nothing
            chained = last[1] or self._chain_tip_below(conn, through)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (ANCHOR_META, json.dumps({"id": last[0], "hash": chained})))
            deleted = int(conn.execute("DELETE FROM journal WHERE id <= ?", (through,)).rowcount)
            return PruneStep(deleted, held is not None or through < last_id or edge is None, held)

        return self._write(run)

    @staticmethod
    def _open_incidents(conn: sqlite3.Connection) -> list[tuple[int, str, float, list[tuple[str | None, str]]]]:
        """The incidents not closed (open or mitigated), oldest first: id, title, opened_at and
        the components they involve as (domain, key), read inside the caller's transaction."""
        out = []
        for row in conn.execute("SELECT id, title, opened_at, refs FROM incidents WHERE status != 'closed' "
                                "ORDER BY id"):
            refs = _loads(row[3], [])
            pairs = []
            for ref in refs if isinstance(refs, list) else []:
                domain, sep, key = str(ref).partition("/")
                if sep and key:
                    pairs.append((_dom(domain), key))
            out.append((int(row[0]), str(row[1]), float(row[2]), pairs))
        return out

    def _first_held_row(self, conn: sqlite3.Connection, through: int) -> RetentionHold | None:
        """The first row at or below `through` that an open incident keeps, and which one:
        every event of a component it involves, and every event from its window on (from
        INCIDENT_WINDOW_LEAD_S before it opened, as its timeline shows them). The rows looked
        at are this batch's alone (everything below was pruned), so the scan stays short."""
        incidents = self._open_incidents(conn)
        if not incidents:
            return None
        clauses = ["ts >= ?"]
        params: list[Any] = [through, min(opened for _, _, opened, _ in incidents) - INCIDENT_WINDOW_LEAD_S]
        refs = sorted({pair for *_, pairs in incidents for pair in pairs}, key=repr)
        for domain, key in refs:
            clauses.append("(domain = ? AND key = ?)")
            params += [domain, key]
        row = conn.execute(f"SELECT id, ts, domain, key FROM journal WHERE id <= ? AND ({' OR '.join(clauses)}) "
                           "ORDER BY id LIMIT 1", params).fetchone()
        if row is None:
            return None
        row_id, ts, domain, key = int(row[0]), float(row[1]), row[2], row[3]
        for incident, title, opened, pairs in incidents:  # the oldest incident that keeps it
            if (domain, key) in pairs:
                return RetentionHold(incident, title, opened, row_id, f"{domain}/{key}")
            if ts >= opened - INCIDENT_WINDOW_LEAD_S:
                return RetentionHold(incident, title, opened, row_id, None)
        return None  # pragma: no cover - the query matched one of them

    def free_pages(self) -> int:
        """Pages of the file that pruned rows left free (the file's size less what it holds)."""
        return int(self.pragma("freelist_count"))

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
                raise self._error("checkpoint", exc) from exc
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

    # ------------------------------------------------------------------ activity

    def set_activity(self, record: ActivityRecord) -> None:
        """Store a key's activity; "active" with no note deletes the row (active is the default)."""
        if record.state not in ACTIVITY_STATES:
            raise UsageError(
                f"'{record.state}' is not an activity state: use one of {', '.join(ACTIVITY_STATES)}."
            )
        domain = _dom(record.domain)
        updated_at = record.updated_at or time.time()

        def run(conn: sqlite3.Connection) -> None:
            if record.state == "active" and not record.note:
                conn.execute("DELETE FROM activity WHERE domain = ? AND key = ?", (domain, record.key))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO activity (domain, key, state, note, actor, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (domain, record.key, record.state, record.note, record.actor, updated_at),
                )

        self._write(run)

    @staticmethod
    def _activity(row: sqlite3.Row) -> ActivityRecord:
        return ActivityRecord(
            domain=row["domain"], key=row["key"], state=row["state"], note=row["note"],
            actor=row["actor"], updated_at=row["updated_at"],
        )

    def get_activity(self, domain: Domain | str, key: str) -> ActivityRecord | None:
        rows = self._read("SELECT * FROM activity WHERE domain = ? AND key = ?", (_dom(domain), key))
        return self._activity(rows[0]) if rows else None

    def all_activity(self) -> list[ActivityRecord]:
        return [self._activity(r) for r in self._read("SELECT * FROM activity ORDER BY domain, key")]

    # ------------------------------------------------------------------ lifecycle snapshots

    def put_lifecycle(self, snap: LifecycleSnapshot) -> None:
        params = (
            _dom(snap.domain), snap.key, snap.state, snap.provider, snap.source,
            snap.pending_provider, snap.last_error, int(snap.inflight),
            None if snap.last_swap is None else json.dumps(snap.last_swap, default=str),
            snap.updated_at or time.time(),
        )
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO lifecycle (domain, key, state, provider, source, "
                "pending_provider, last_error, inflight, last_swap, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        )

    @staticmethod
    def _lifecycle(row: sqlite3.Row) -> LifecycleSnapshot:
        return LifecycleSnapshot(
            domain=row["domain"], key=row["key"], state=row["state"], provider=row["provider"],
            source=row["source"], pending_provider=row["pending_provider"],
            last_error=row["last_error"], inflight=row["inflight"],
            last_swap=_loads(row["last_swap"], None), updated_at=row["updated_at"],
        )

    def get_lifecycle(self, domain: Domain | str, key: str) -> LifecycleSnapshot | None:
        rows = self._read("SELECT * FROM lifecycle WHERE domain = ? AND key = ?", (_dom(domain), key))
        return self._lifecycle(rows[0]) if rows else None

    def all_lifecycle(self) -> list[LifecycleSnapshot]:
        return [self._lifecycle(r) for r in self._read("SELECT * FROM lifecycle ORDER BY domain, key")]

    def clear_lifecycle(self) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM lifecycle"))

    # ------------------------------------------------------------------ health snapshots

    def put_health(self, snap: HealthSnapshot) -> None:
        """Store the latest health of a key (one row per domain/key, whatever the provider)."""
        params = (
            _dom(snap.domain), snap.key, snap.provider, str(snap.status), snap.latency_ms,
            snap.message or "", snap.checked_at, snap.changed_at, json.dumps(list(snap.samples)),
        )
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO health (domain, key, provider, status, latency_ms, message, "
                "checked_at, changed_at, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        )

    @staticmethod
    def _health(row: sqlite3.Row) -> HealthSnapshot:
        samples = _loads(row["samples"], [])
        return HealthSnapshot(
            domain=row["domain"], key=row["key"], provider=row["provider"], status=row["status"],
            latency_ms=row["latency_ms"], message=row["message"] or "",
            checked_at=row["checked_at"], changed_at=row["changed_at"],
            samples=list(samples) if isinstance(samples, list) else [],
        )

    def get_health(self, domain: Domain | str, key: str) -> HealthSnapshot | None:
        rows = self._read("SELECT * FROM health WHERE domain = ? AND key = ?", (_dom(domain), key))
        return self._health(rows[0]) if rows else None

    def all_health(self) -> list[HealthSnapshot]:
        return [self._health(r) for r in self._read("SELECT * FROM health ORDER BY domain, key")]

    # ------------------------------------------------------------------ proposals

    _PROPOSAL_FIELDS = (
        "domain", "key", "from_provider", "to_provider", "to_source", "force", "source", "reason",
        "requested_by", "created_at", "expires_at", "status", "decided_by", "decided_at", "comment",
        "outcome", "outcome_reason", "requested_by_id", "decided_by_id",
    )

    def _sealer(self, what: str) -> RowSeal:
        if self.seal is None:
            raise StoreError(f"cannot write {what} to the state store {self.path}: this process cannot read "
                             f"its seal key ({self.path.parent / 'seal.key'}), so it is not the store's owner")
        return self.seal

    def put_proposal(self, record: ProposalRecord) -> ProposalRecord:
        """Insert a new proposal (sets `record.id`) or update an existing one, sealed."""
        sealer = self._sealer("a proposal")
        values = [getattr(record, f) for f in self._PROPOSAL_FIELDS]
        values[0] = _dom(values[0])
        values[5] = int(bool(values[5]))
        columns = ", ".join(self._PROPOSAL_FIELDS)

        def run(conn: sqlite3.Connection) -> int:
            row_id = record.id
            if row_id is None:
                row_id = _inserted_id(conn.execute(
                    f"INSERT INTO proposals ({columns}) VALUES ({', '.join('?' for _ in values)})", values))
            else:
                conn.execute(f"UPDATE proposals SET {', '.join(f + ' = ?' for f in self._PROPOSAL_FIELDS)} "
                             "WHERE id = ?", [*values, row_id])
            conn.execute("UPDATE proposals SET seal = ? WHERE id = ?",
                         (sealer.seal("proposals", row_id, values), row_id))
            return row_id

        record.id = self._write(run)
        record.sealed = True
        return record

    def _proposal(self, row: sqlite3.Row) -> ProposalRecord:
        values = [row[f] for f in self._PROPOSAL_FIELDS]
        data = dict(zip(self._PROPOSAL_FIELDS, values, strict=True))
        data["force"] = bool(data["force"])
        sealed = None if self.seal is None else self.seal.check("proposals", row["id"], values, row["seal"])
        return ProposalRecord(id=row["id"], sealed=sealed, **data)

    def get_proposal(self, proposal_id: int) -> ProposalRecord | None:
        rows = self._read("SELECT * FROM proposals WHERE id = ?", (int(proposal_id),))
        return self._proposal(rows[0]) if rows else None

    def proposals(self, *, status: str | None = None, limit: int = 200) -> list[ProposalRecord]:
        """Newest `limit` proposals (optionally of one status), oldest first."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._read(
            f"SELECT * FROM (SELECT * FROM proposals {where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            (*params, int(limit)),
        )
        return [self._proposal(r) for r in rows]

    def clear_health(self) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM health"))

    # ------------------------------------------------------------------ host lease

    @staticmethod
    def _lease(row: sqlite3.Row | None) -> LeaseInfo | None:
        if row is None:
            return None
        return LeaseInfo(
            pid=row["pid"], hostname=row["hostname"],
            started_at=row["started_at"], heartbeat_at=row["heartbeat_at"],
        )

    def acquire_lease(
        self, pid: int, hostname: str, *, stale_after_s: float = 5.0, now: float | None = None,
        holder_dead: Callable[[LeaseInfo], bool] | None = None,
    ) -> tuple[bool, LeaseInfo | None]:
        """Take the host lease if it is free, stale, or already ours; else (False, holder).

        `holder_dead(holder)` may say that a fresh-looking holder is gone (a process of this
        machine that no longer exists): it is asked inside the write transaction, so two new
        hosts racing for a dead holder's lease cannot both win."""
        at = time.time() if now is None else now

        def run(conn: sqlite3.Connection) -> tuple[bool, LeaseInfo | None]:
            current = self._lease(conn.execute("SELECT * FROM lease WHERE id = 1").fetchone())
            ours = current is not None and current.pid == pid and current.hostname == hostname
            if (current is not None and not ours and not current.is_stale(at, stale_after_s)
                    and not (holder_dead is not None and holder_dead(current))):
                return False, current
            started = current.started_at if ours and current is not None else at
            conn.execute(
                "INSERT OR REPLACE INTO lease (id, pid, hostname, started_at, heartbeat_at) "
                "VALUES (1, ?, ?, ?, ?)",
                (pid, hostname, started, at),
            )
            return True, LeaseInfo(pid=pid, hostname=hostname, started_at=started, heartbeat_at=at)

        return self._write(run)

    def heartbeat(self, pid: int, hostname: str, now: float | None = None) -> bool:
        """Refresh our lease and publish the journal's head (`HEAD_META`), in one
        transaction; False when the lease is no longer ours (taken over or released)."""
        at = time.time() if now is None else now

        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute("UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ? AND hostname = ?",
                                (at, pid, hostname)).rowcount:
                return False
            self._publish_head(conn, at)
            return True

        return bool(self._write(run))

    def release_lease(self, pid: int, hostname: str) -> bool:
        """Give the lease up if we hold it, publishing the journal's head a last time (it then
        covers the host's own host-stopped event); True when a lease was released."""

        def run(conn: sqlite3.Connection) -> bool:
            if not conn.execute("DELETE FROM lease WHERE id = 1 AND pid = ? AND hostname = ?",
                                (pid, hostname)).rowcount:
                return False
            self._publish_head(conn, time.time())
            return True

        return bool(self._write(run))

    def current_lease(self) -> LeaseInfo | None:
        rows = self._read("SELECT * FROM lease WHERE id = 1")
        return self._lease(rows[0] if rows else None)

    # ------------------------------------------------------------------ command record
    # The host writes one row per command it received over its socket (host_session.py): a
    # record of who asked for what and what came of it, never an inbox. A row the host did
    # not write fails its seal and is refused, never run.

    _COMMAND_FIELDS = ("kind", "args", "requested_by", "requested_by_id", "created_at", "status",
                       "started_at", "result", "exit_code", "finished_at")

    def _command(self, row: sqlite3.Row) -> CommandRecord:
        args = _loads(row["args"], {})
        result = _loads(row["result"], None)
        sealed = None if self.seal is None else self.seal.check(
            "commands", row["id"], [row[f] for f in self._COMMAND_FIELDS], row["seal"])
        return CommandRecord(
            kind=row["kind"], args=args if isinstance(args, dict) else {},
            requested_by=row["requested_by"], created_at=row["created_at"], deadline=row["deadline"],
            status=row["status"], started_at=row["started_at"],
            result=result if isinstance(result, dict) else None, exit_code=row["exit_code"],
            finished_at=row["finished_at"], id=row["id"], requested_by_id=row["requested_by_id"], sealed=sealed,
        )

    def _reseal_command(self, conn: sqlite3.Connection, command_id: int) -> None:
        row = conn.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        if row is not None:
            seal = self._sealer("a command").seal("commands", command_id, [row[f] for f in self._COMMAND_FIELDS])
            conn.execute("UPDATE commands SET seal = ? WHERE id = ?", (seal, command_id))

    def record_command(self, kind: str, args: dict[str, Any], requested_by: str, requested_by_id: str, *,
                       now: float | None = None) -> CommandRecord:
        """The host took a command: store it as running, sealed; returns it with its id."""
        self._sealer("a command")
        at = time.time() if now is None else now
        record = CommandRecord(kind, dict(args), requested_by, at, status="running", started_at=at,
                               requested_by_id=requested_by_id, sealed=True)
        params = (kind, json.dumps(record.args, default=str, sort_keys=True), requested_by, requested_by_id, at, at)

        def run(conn: sqlite3.Connection) -> int:
            row_id = _inserted_id(conn.execute(
                "INSERT INTO commands (kind, args, requested_by, requested_by_id, created_at, status, started_at) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)", params))
            self._reseal_command(conn, row_id)
            return row_id

        record.id = self._write(run)
        return record

    def get_command(self, command_id: int) -> CommandRecord | None:
        rows = self._read("SELECT * FROM commands WHERE id = ?", (int(command_id),))
        return self._command(rows[0]) if rows else None

    def commands_after(self, command_id: int, limit: int = 1000) -> list[CommandRecord]:
        """Command rows with an id above `command_id`, oldest first (the host's tamper scan)."""
        rows = self._read("SELECT * FROM commands WHERE id > ? ORDER BY id LIMIT ?", (int(command_id), int(limit)))
        return [self._command(r) for r in rows]

    def finish_command(self, command_id: int, status: str, result: dict[str, Any], exit_code: int,
                       now: float | None = None) -> None:
        """Store a command's outcome (`done`, `failed` or `refused`), sealed."""
        at = time.time() if now is None else now
        text = json.dumps(result, default=str, sort_keys=True)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE commands SET status = ?, result = ?, exit_code = ?, finished_at = ? WHERE id = ?",
                         (status, text, int(exit_code), at, int(command_id)))
            self._reseal_command(conn, int(command_id))

        self._write(run)

    def fail_running_commands(self, reason: str, exit_code: int = 1, now: float | None = None) -> int:
        """Close the commands a previous host took but never answered (it died); returns how many."""
        at = time.time() if now is None else now
        text = json.dumps({"data": {}, "message": reason}, sort_keys=True)

        def run(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute("SELECT id FROM commands WHERE status = 'running'")]
            for row_id in ids:
                conn.execute("UPDATE commands SET status = 'failed', result = ?, exit_code = ?, finished_at = ? "
                             "WHERE id = ?", (text, int(exit_code), at, row_id))
                self._reseal_command(conn, row_id)
            return len(ids)

        return self._write(run)

    def last_command_id(self) -> int:
        rows = self._read("SELECT COALESCE(MAX(id), 0) FROM commands")
        return int(rows[0][0])

    def prune_commands(self, max_age_s: float, now: float | None = None) -> int:
        """Delete finished commands older than `max_age_s`; returns how many."""
        cutoff = (time.time() if now is None else now) - max_age_s
        return int(self._write(lambda conn: conn.execute(
            "DELETE FROM commands WHERE status NOT IN ('pending', 'running') AND created_at < ?",
            (cutoff,)).rowcount))

    def data_version(self) -> int:
        """Changes whenever *another* connection commits: lets a poller skip unchanged rounds."""
        return int(self.pragma("data_version"))

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        if not rows or rows[0][0] is None:
            return default
        return _loads(rows[0][0], default)

    def delete_meta(self, key: str) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM meta WHERE key = ?", (key,)))

    def set_meta(self, key: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text)
            )
        )

    # ------------------------------------------------------------------ incidents (runbooks/incidents.py)

    INCIDENT_FIELDS = ("title", "severity", "status", "commander", "opened_at", "closed_at", "refs", "tree",
                       "summary", "impact", "root_cause", "resolution", "follow_ups")

    def add_incident(self, values: dict[str, Any]) -> int:
        """Insert an incident row (columns of INCIDENT_FIELDS; refs and follow_ups as JSON text); its id."""
        cols = [f for f in self.INCIDENT_FIELDS if f in values]
        sql = f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        return self._write(lambda conn: _inserted_id(conn.execute(sql, [values[c] for c in cols])))

    def update_incident(self, incident_id: int, values: dict[str, Any]) -> None:
        cols = [f for f in self.INCIDENT_FIELDS if f in values]
        if not cols:
            return
        sql = f"UPDATE incidents SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?"
        self._write(lambda conn: conn.execute(sql, [*(values[c] for c in cols), int(incident_id)]))

    def get_incident(self, incident_id: int) -> sqlite3.Row | None:
        rows = self._read("SELECT * FROM incidents WHERE id = ?", (int(incident_id),))
        return rows[0] if rows else None

    def incidents(self, *, status: str | None = None, limit: int = 100) -> list[sqlite3.Row]:
        """Incident rows, newest first."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return self._read(f"SELECT * FROM incidents {where} ORDER BY id DESC LIMIT ?", (*params, int(limit)))

    def add_incident_entry(self, incident_id: int, ts: float, kind: str, actor: str | None, text: str,
                           data: str = "{}") -> None:
        self._write(lambda conn: conn.execute(
            "INSERT INTO incident_timeline (incident_id, ts, kind, actor, text, data) VALUES (?, ?, ?, ?, ?, ?)",
            (int(incident_id), ts, kind, actor, text, data)))

    def incident_entries(self, incident_id: int) -> list[sqlite3.Row]:
        """An incident's recorded timeline, oldest first."""
        return self._read("SELECT * FROM incident_timeline WHERE incident_id = ? ORDER BY ts, id", (int(incident_id),))
