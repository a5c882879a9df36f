"""The SQLite schema, as the ordered steps that build it: `PRAGMA user_version` counts the
steps applied. Append to MIGRATIONS, never edit an entry that has shipped; a step that
changes the schema gets the same number in every backend's list (pg_migrations.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from ..journal_hash import GENESIS, row_hash
from .journal import start_node_chains
from .records import ANCHOR_META, CHAIN_COLUMNS, IDS_META, SEALED_META, VACUUM_META


def _seal_journal(conn: sqlite3.Connection) -> None:
    """Chain the rows written before the chain existed, oldest first from GENESIS, so later
    edits of them are caught too (what they said before the upgrade is taken as found).
    Ids may have gaps among them (an older prune went by age alone); `SEALED_META` tells
    verification so. The anchor sits just before the first row."""
    rows = conn.execute(f"SELECT {CHAIN_COLUMNS} FROM journal ORDER BY id").fetchall()
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
    one past its tip, JournalRepo.append_many), so SQLite's own counter was one more B-tree write
    in every append (about a sixth of an append's cost, bench/journal_append.py) and said
    nothing the chain does not. The highest id it had given out is kept in meta when rows
    at the end had been deleted, so no id is ever given out twice."""
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    conn.execute(_JOURNAL_TABLE.format(name="journal_by_chain"))
    conn.execute(f"INSERT INTO journal_by_chain ({CHAIN_COLUMNS}, prev_hash, hash) "
                 f"SELECT {CHAIN_COLUMNS}, prev_hash, hash FROM journal")
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
    owed; `SqliteBackend._owed_vacuum` runs it right after the migration commits (stores made by
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


# Step 9 in both backends' words: the lease becomes a row per node (the one lease there was
# becomes its host's node), and the journal and the host's snapshots carry their node. A SQLite
# file holds one node, so its snapshot tables keep their keys; PostgreSQL's gain the node.
_NODES_STEP: tuple[str, ...] = (
    """CREATE TABLE nodes (
        node TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        version TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        stopped_at REAL,
        summary TEXT NOT NULL DEFAULT '{}'
    )""",
    "INSERT INTO nodes (node, pid, hostname, started_at, heartbeat_at) "
    "SELECT hostname, pid, hostname, started_at, heartbeat_at FROM lease",
    "DROP TABLE lease",
    "ALTER TABLE journal ADD COLUMN node TEXT",  # no index: a file holds one node (one more B-tree per append)
    "ALTER TABLE lifecycle ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE health ADD COLUMN node TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE activity ADD COLUMN node TEXT NOT NULL DEFAULT ''",
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
    # 9: nodes (issue 18): a row per host instead of one lease, and the node on what a host writes
    _NODES_STEP,
    # 10: commands and proposals carry their node; a fleet store's requests for other nodes'
    # hosts (pg_migrations.py) have no table here: a file is one node's, whose host takes
    # requests over its socket
    ("ALTER TABLE commands ADD COLUMN node TEXT", "ALTER TABLE proposals ADD COLUMN node TEXT"),
    # 11: rolling swaps over a fleet's nodes (pg_migrations.py, rollout.py): one node, none here
    (),
    # 12: an incident carries the node it was opened on (the incidents view of a fleet store)
    ("ALTER TABLE incidents ADD COLUMN node TEXT",),
    # 13: the journal chains per node (journal_hash.py format 2), from the global chain's end on
    (start_node_chains,),
]

SCHEMA_VERSION = len(MIGRATIONS)
