"""The nodes table: each node's host lease, renewed by its heartbeat (which also publishes the
journal's head), and the fleet's list of nodes (`oneiric nodes`).

A node's lease says which process hosts it. On a store of many nodes (PostgreSQL) each node
has its own; a SQLite file holds one node (scope.py), so its one live row is the lease of the
file whatever node name took it, and a host with another name takes it over only once it is
free or stale, as before."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .backend import Backend, Connection, Row
from .codec import _loads
from .journal import JournalRepo
from .records import LeaseInfo
from .scope import NodeScope

_UPSERT_COLUMNS = ("node", "pid", "hostname", "version", "started_at", "heartbeat_at", "stopped_at")


class LeaseRepo:
    def __init__(self, db: Backend, journal: JournalRepo, scope: NodeScope, version: str = "") -> None:
        self.db, self.journal, self.scope, self.version = db, journal, scope, version

    @staticmethod
    def _lease(row: Row | None) -> LeaseInfo | None:
        if row is None:
            return None
        summary = _loads(row["summary"], {})
        return LeaseInfo(
            pid=row["pid"], hostname=row["hostname"], started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"], node=row["node"], version=row["version"],
            stopped_at=row["stopped_at"], summary=summary if isinstance(summary, dict) else {},
        )

    def _holder_sql(self) -> tuple[str, tuple[str, ...]]:
        """This node's live lease row: its own row, or on a one-node store the file's live one."""
        only, node = self.scope.only()
        return (f"SELECT * FROM nodes WHERE stopped_at IS NULL{only} ORDER BY heartbeat_at DESC LIMIT 1", node)

    def acquire_lease(
        self, pid: int, hostname: str, *, stale_after_s: float = 5.0, now: float | None = None,
        holder_dead: Callable[[LeaseInfo], bool] | None = None,
    ) -> tuple[bool, LeaseInfo | None]:
        """Take this node's lease if it is free, stale, or already ours; else (False, holder).

        `holder_dead(holder)` may say that a fresh-looking holder is gone (a process of this
        machine that no longer exists): it is asked inside the write transaction, so two new
        hosts racing for a dead holder's lease cannot both win."""
        at = time.time() if now is None else now
        sql, params = self._holder_sql()

        def run(conn: Connection) -> tuple[bool, LeaseInfo | None]:
            current = self._lease(conn.execute(sql, params).fetchone())
            ours = current is not None and current.pid == pid and current.hostname == hostname
            if (current is not None and not ours and not current.is_stale(at, stale_after_s)
                    and not (holder_dead is not None and holder_dead(current))):
                return False, current
            started = current.started_at if ours and current is not None else at
            if self.db.holds_one_node:  # the file's one live row becomes this node's
                conn.execute("UPDATE nodes SET stopped_at = ? WHERE stopped_at IS NULL AND node != ?",
                             (at, self.scope.node))
            conn.execute(
                self.db.dialect.upsert("nodes", _UPSERT_COLUMNS, ("node",)),
                (self.scope.node, pid, hostname, self.version, started, at, None),
            )
            return True, LeaseInfo(pid=pid, hostname=hostname, started_at=started, heartbeat_at=at,
                                   node=self.scope.node, version=self.version)

        return self.db.write(run)

    def heartbeat(self, pid: int, hostname: str, now: float | None = None) -> bool:
        """Refresh our lease and publish the journal's head (`HEAD_META`), in one
        transaction; False when the lease is no longer ours (taken over or released)."""
        at = time.time() if now is None else now

        def run(conn: Connection) -> bool:
            if not conn.execute("UPDATE nodes SET heartbeat_at = ? WHERE node = ? AND pid = ? AND hostname = ? "
                                "AND stopped_at IS NULL", (at, self.scope.node, pid, hostname)).rowcount:
                return False
            self.journal._publish_head(conn, at)
            return True

        return bool(self.db.write(run))

    def release_lease(self, pid: int, hostname: str) -> bool:
        """Give the lease up if we hold it, publishing the journal's head a last time (it then
        covers the host's own host-stopped event); True when a lease was released. The node
        stays listed, as stopped."""

        def run(conn: Connection) -> bool:
            if not conn.execute("UPDATE nodes SET stopped_at = ? WHERE node = ? AND pid = ? AND hostname = ? "
                                "AND stopped_at IS NULL", (time.time(), self.scope.node, pid, hostname)).rowcount:
                return False
            self.journal._publish_head(conn, time.time())
            return True

        return bool(self.db.write(run))

    def report(self, pid: int, hostname: str, summary: dict[str, Any]) -> bool:
        """Record what the host says of its node (`oneiric nodes` shows it); False when the
        lease is no longer ours."""
        text = json.dumps(summary, default=str, sort_keys=True)
        return bool(self.db.write(lambda conn: conn.execute(
            "UPDATE nodes SET summary = ? WHERE node = ? AND pid = ? AND hostname = ? AND stopped_at IS NULL",
            (text, self.scope.node, pid, hostname)).rowcount))

    def current_lease(self) -> LeaseInfo | None:
        """This node's host, None when no process holds its lease (it may be stale)."""
        sql, params = self._holder_sql()
        rows = self.db.read(sql, params)
        return self._lease(rows[0] if rows else None)

    def nodes(self) -> list[LeaseInfo]:
        """Every node the store has seen, by name, stopped ones included."""
        return [lease for row in self.db.read("SELECT * FROM nodes ORDER BY node")
                if (lease := self._lease(row)) is not None]
