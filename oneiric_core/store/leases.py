"""The host lease: which process is the host of this store, renewed by its heartbeat (which
also publishes the journal's head). One row today; a row per node later (issue 18)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .backend import Backend, Connection, Row
from .journal import JournalRepo
from .records import LeaseInfo


class LeaseRepo:
    def __init__(self, db: Backend, journal: JournalRepo) -> None:
        self.db, self.journal = db, journal

    @staticmethod
    def _lease(row: Row | None) -> LeaseInfo | None:
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

        def run(conn: Connection) -> tuple[bool, LeaseInfo | None]:
            current = self._lease(conn.execute("SELECT * FROM lease WHERE id = 1").fetchone())
            ours = current is not None and current.pid == pid and current.hostname == hostname
            if (current is not None and not ours and not current.is_stale(at, stale_after_s)
                    and not (holder_dead is not None and holder_dead(current))):
                return False, current
            started = current.started_at if ours and current is not None else at
            conn.execute(
                self.db.dialect.upsert("lease", ("id", "pid", "hostname", "started_at", "heartbeat_at"), ("id",)),
                (1, pid, hostname, started, at),
            )
            return True, LeaseInfo(pid=pid, hostname=hostname, started_at=started, heartbeat_at=at)

        return self.db.write(run)

    def heartbeat(self, pid: int, hostname: str, now: float | None = None) -> bool:
        """Refresh our lease and publish the journal's head (`HEAD_META`), in one
        transaction; False when the lease is no longer ours (taken over or released)."""
        at = time.time() if now is None else now

        def run(conn: Connection) -> bool:
            if not conn.execute("UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ? AND hostname = ?",
                                (at, pid, hostname)).rowcount:
                return False
            self.journal._publish_head(conn, at)
            return True

        return bool(self.db.write(run))

    def release_lease(self, pid: int, hostname: str) -> bool:
        """Give the lease up if we hold it, publishing the journal's head a last time (it then
        covers the host's own host-stopped event); True when a lease was released."""

        def run(conn: Connection) -> bool:
            if not conn.execute("DELETE FROM lease WHERE id = 1 AND pid = ? AND hostname = ?",
                                (pid, hostname)).rowcount:
                return False
            self.journal._publish_head(conn, time.time())
            return True

        return bool(self.db.write(run))

    def current_lease(self) -> LeaseInfo | None:
        rows = self.db.read("SELECT * FROM lease WHERE id = 1")
        return self._lease(rows[0] if rows else None)
