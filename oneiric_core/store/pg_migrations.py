"""The PostgreSQL schema, as the ordered steps that build it, numbered as SQLite's are
(sqlite_migrations.py): step N here does what step N does there, in this dialect, so one
SCHEMA_VERSION names the same tables and columns in both. `oneiric_schema.version` counts
the steps applied.

No PostgreSQL store predates schema 8, so a few steps that rewrite old SQLite files have
nothing to do here and are kept as empty steps, in their place: the journal never had an
AUTOINCREMENT counter to drop (step 7; its ids come from the hash chain from the start) and
PostgreSQL reclaims the space of deleted rows itself (step 8, autovacuum). Timestamps are
DOUBLE PRECISION (SQLite's REAL is 8 bytes; PostgreSQL's REAL is only 4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ..journal_hash import GENESIS
from .backend import Connection
from .journal import start_node_chains
from .records import ANCHOR_META, SEALED_META


def _anchor_the_chain(conn: Connection) -> None:
    """What SQLite's step 5 records for a journal without rows: the chain starts at GENESIS
    just before id 1, and no row predates the chain."""
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [(ANCHOR_META, json.dumps({"id": 0, "hash": GENESIS})), (SEALED_META, json.dumps(0))],
    )


ROLES = ("oneiric_host", "oneiric_operator", "oneiric_viewer")


def _roles(conn: Connection) -> None:
    """The three roles of a fleet store, created when missing (roles are the cluster's, so a
    second store in another schema finds them), with their privileges on this schema: a
    viewer reads; an operator also writes requests for hosts (and incidents); a host writes
    everything. A DBA makes people members: `GRANT oneiric_operator TO alice;`. Nobody but a
    host may update or delete a journal row."""
    for role in ROLES:
        conn.execute(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} NOLOGIN; END IF;
        END $$""")
    schema = "current_schema()"
    conn.execute(f"""DO $$ BEGIN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO oneiric_viewer, oneiric_operator, oneiric_host', {schema});
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO oneiric_viewer, oneiric_operator', {schema});
        EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO oneiric_host', {schema});
        EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO oneiric_operator, oneiric_host', {schema});
    END $$""")
    conn.execute("GRANT INSERT ON requests, incidents, incident_timeline TO oneiric_operator")
    conn.execute("GRANT UPDATE ON incidents TO oneiric_operator")


def _rollout_decisions(conn: Connection) -> None:
    """Approving or rejecting a rollout is a function an operator may call, not an UPDATE it
    may write (which could set any status): it decides a pending rollout only, and with
    `two_person` never as the role that asked. SECURITY DEFINER, with its search_path pinned
    to this schema; `session_user` stays the caller, so the trigger stamps who decided."""
    conn.execute("""DO $$ BEGIN EXECUTE format($f$
        CREATE FUNCTION oneiric_decide_rollout(rollout BIGINT, verdict TEXT, two_person BOOLEAN) RETURNS TEXT
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = %I AS $body$
        DECLARE asked TEXT; now_status TEXT;
        BEGIN
            SELECT requested_by_id, status INTO asked, now_status FROM rollouts WHERE id = rollout FOR UPDATE;
            IF NOT FOUND THEN RETURN 'missing'; END IF;
            IF now_status <> 'pending' THEN RETURN now_status; END IF;
            IF verdict NOT IN ('approved', 'rejected') THEN RETURN 'bad verdict'; END IF;
            IF two_person AND verdict = 'approved' AND asked = 'db-role:' || session_user THEN
                RETURN 'same person';
            END IF;
            UPDATE rollouts SET status = verdict, updated_at = extract(epoch FROM clock_timestamp()) WHERE id = rollout;
            PERFORM pg_notify(left('oneiric_' || current_schema(), 63), 'rollout:' || rollout);
            RETURN 'decided';
        END $body$ $f$, current_schema()); END $$""")
    conn.execute("REVOKE ALL ON FUNCTION oneiric_decide_rollout(BIGINT, TEXT, BOOLEAN) FROM PUBLIC")
    conn.execute("GRANT EXECUTE ON FUNCTION oneiric_decide_rollout(BIGINT, TEXT, BOOLEAN) "
                 "TO oneiric_operator, oneiric_host")


Migration = Sequence[str | Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    # 1: journal, activity, snapshots, lease, meta
    (
        """CREATE TABLE journal (
            id BIGINT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            domain TEXT,
            key TEXT,
            provider TEXT,
            actor TEXT,
            outcome TEXT,
            duration_ms DOUBLE PRECISION,
            message TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX journal_ts ON journal(ts)",
        "CREATE INDEX journal_kind ON journal(kind)",
        "CREATE INDEX journal_ref ON journal(domain, key)",
        """CREATE TABLE activity (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            note TEXT,
            actor TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE lifecycle (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            provider TEXT,
            source TEXT,
            pending_provider TEXT,
            last_error TEXT,
            inflight INTEGER NOT NULL DEFAULT 0,
            last_swap TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE health (
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            provider TEXT,
            status TEXT NOT NULL,
            latency_ms DOUBLE PRECISION,
            message TEXT NOT NULL DEFAULT '',
            checked_at DOUBLE PRECISION NOT NULL,
            changed_at DOUBLE PRECISION NOT NULL,
            samples TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (domain, key)
        )""",
        """CREATE TABLE lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pid INTEGER NOT NULL,
            hostname TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    ),
    # 2: swap proposals (change control)
    (
        """CREATE TABLE proposals (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            from_provider TEXT,
            to_provider TEXT NOT NULL,
            to_source TEXT,
            force INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            requested_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            status TEXT NOT NULL,
            decided_by TEXT,
            decided_at DOUBLE PRECISION,
            comment TEXT,
            outcome TEXT,
            outcome_reason TEXT
        )""",
        "CREATE INDEX proposals_status ON proposals(status)",
    ),
    # 3: the command record (commands.py)
    (
        """CREATE TABLE commands (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            kind TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            requested_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            deadline DOUBLE PRECISION,
            status TEXT NOT NULL DEFAULT 'pending',
            started_at DOUBLE PRECISION,
            result TEXT,
            exit_code INTEGER,
            finished_at DOUBLE PRECISION
        )""",
        "CREATE INDEX commands_status ON commands(status, id)",
    ),
    # 4: incidents and their timelines (runbooks/incidents.py)
    (
        """CREATE TABLE incidents (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            title TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            commander TEXT NOT NULL,
            opened_at DOUBLE PRECISION NOT NULL,
            closed_at DOUBLE PRECISION,
            refs TEXT NOT NULL DEFAULT '[]',
            tree TEXT,
            summary TEXT NOT NULL DEFAULT '',
            impact TEXT NOT NULL DEFAULT '',
            root_cause TEXT NOT NULL DEFAULT '',
            resolution TEXT NOT NULL DEFAULT '',
            follow_ups TEXT NOT NULL DEFAULT '[]'
        )""",
        """CREATE TABLE incident_timeline (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            incident_id BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            text TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX incident_timeline_incident ON incident_timeline(incident_id, id)",
    ),
    # 5: the journal becomes a hash chain (journal_hash.py, journal_chain.py)
    (
        "ALTER TABLE journal ADD COLUMN prev_hash TEXT",
        "ALTER TABLE journal ADD COLUMN hash TEXT",
        _anchor_the_chain,
    ),
    # 6: verified principals and seals (principal.py, seal.py)
    (
        "ALTER TABLE proposals ADD COLUMN requested_by_id TEXT",
        "ALTER TABLE proposals ADD COLUMN decided_by_id TEXT",
        "ALTER TABLE proposals ADD COLUMN seal TEXT",
        "ALTER TABLE commands ADD COLUMN requested_by_id TEXT",
        "ALTER TABLE commands ADD COLUMN seal TEXT",
    ),
    # 7: the chain gives the journal its ids: here it always did
    (),
    # 8: deleted rows give their space back: PostgreSQL's autovacuum does
    (),
    # 9: nodes: a row per host; the journal and each node's snapshots and activity carry it
    (
        """CREATE TABLE nodes (
            node TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            hostname TEXT NOT NULL,
            version TEXT NOT NULL DEFAULT '',
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            stopped_at DOUBLE PRECISION,
            summary TEXT NOT NULL DEFAULT '{}'
        )""",
        "INSERT INTO nodes (node, pid, hostname, started_at, heartbeat_at) "
        "SELECT hostname, pid, hostname, started_at, heartbeat_at FROM lease",
        "DROP TABLE lease",
        "ALTER TABLE journal ADD COLUMN node TEXT",
        "CREATE INDEX journal_node ON journal(node, id)",
        *(statement for table in ("lifecycle", "health", "activity") for statement in (
            f"ALTER TABLE {table} ADD COLUMN node TEXT NOT NULL DEFAULT ''",
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey",
            f"ALTER TABLE {table} ADD PRIMARY KEY (node, domain, key)",
        )),
    ),
    # 10: commands and proposals carry their node; requests for a node's host written by anyone
    # in the fleet (requests.py), stamped by the database with who wrote them; the roles a DBA
    # grants (docs/fleet.md)
    (
        "ALTER TABLE commands ADD COLUMN node TEXT",
        "ALTER TABLE proposals ADD COLUMN node TEXT",
        """CREATE TABLE requests (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            node TEXT NOT NULL,
            kind TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            display TEXT,
            requested_by_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            deadline DOUBLE PRECISION,
            status TEXT NOT NULL,
            taken_at DOUBLE PRECISION,
            command_id BIGINT,
            result TEXT,
            exit_code INTEGER,
            finished_at DOUBLE PRECISION
        )""",
        "CREATE INDEX requests_pending ON requests(node, status, id)",
        # Whatever the writer says, the row names the session's role and starts pending: an
        # operator cannot write a request as someone else, or one that looks already done.
        """CREATE FUNCTION oneiric_stamp_request() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.requested_by_id := 'db-role:' || session_user;
            NEW.created_at := extract(epoch FROM clock_timestamp());
            NEW.status := 'pending';
            NEW.taken_at := NULL; NEW.command_id := NULL; NEW.result := NULL;
            NEW.exit_code := NULL; NEW.finished_at := NULL;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER requests_stamp BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION oneiric_stamp_request()",
        # The node's host wakes at once (backend.PgListener), not at its next safety-net look.
        """CREATE FUNCTION oneiric_announce_request() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify(left('oneiric_' || TG_TABLE_SCHEMA, 63), 'request:' || NEW.node || ':' || NEW.id);
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER requests_announce AFTER INSERT ON requests FOR EACH ROW "
        "EXECUTE FUNCTION oneiric_announce_request()",
        _roles,
    ),
    # 11: rolling swaps (rollout.py): one row per rollout, one per node's step; who asked and who
    # approved are the database's word, and the two-person rule is the database's too
    (
        """CREATE TABLE rollouts (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            domain TEXT NOT NULL,
            key TEXT NOT NULL,
            provider TEXT NOT NULL,
            plan TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT '',
            display TEXT,
            requested_by_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            decided_by_id TEXT,
            decided_at DOUBLE PRECISION,
            batch INTEGER NOT NULL DEFAULT 0,
            halted_reason TEXT,
            coordinator TEXT,
            coordinator_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE rollout_steps (
            rollout_id BIGINT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
            node TEXT NOT NULL,
            batch INTEGER NOT NULL,
            from_provider TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            request_id BIGINT,
            message TEXT NOT NULL DEFAULT '',
            started_at DOUBLE PRECISION,
            soak_from DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            PRIMARY KEY (rollout_id, node)
        )""",
        """CREATE FUNCTION oneiric_stamp_rollout() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW.requested_by_id := 'db-role:' || session_user;
                NEW.created_at := extract(epoch FROM clock_timestamp());
                NEW.status := 'pending'; NEW.decided_by_id := NULL; NEW.decided_at := NULL;
            ELSIF NEW.status IN ('approved', 'rejected') AND OLD.status = 'pending' THEN
                NEW.decided_by_id := 'db-role:' || session_user;
                NEW.decided_at := extract(epoch FROM clock_timestamp());
            ELSE
                NEW.decided_by_id := OLD.decided_by_id; NEW.decided_at := OLD.decided_at;
            END IF;
            IF TG_OP = 'UPDATE' THEN NEW.requested_by_id := OLD.requested_by_id; END IF;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER rollouts_stamp BEFORE INSERT OR UPDATE ON rollouts FOR EACH ROW "
        "EXECUTE FUNCTION oneiric_stamp_rollout()",
        _rollout_decisions,
        "GRANT SELECT ON rollouts, rollout_steps TO oneiric_viewer, oneiric_operator",
        "GRANT INSERT ON rollouts TO oneiric_operator",
        "GRANT ALL ON rollouts, rollout_steps TO oneiric_host",
    ),
    # 12: an incident carries the node it was opened on (the incidents view of a fleet store)
    ("ALTER TABLE incidents ADD COLUMN node TEXT",),
    # 13: the journal chains per node (journal_hash.py format 2), from the global chain's end on
    (start_node_chains,),
]

SCHEMA_VERSION = len(MIGRATIONS)  # tests/test_store_backends.py holds it equal to SQLite's
