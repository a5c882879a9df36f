"""The activity table: keys an operator paused, or that are draining (active is the default)."""

from __future__ import annotations

import time

from ..domains import Domain
from ..errors import UsageError
from .backend import Backend, Connection, Row
from .codec import _dom
from .records import ACTIVITY_STATES, ActivityRecord
from .scope import NodeScope


class ActivityRepo:
    """A node's keys' activity (scope.py: on a shared store, each node's own)."""

    def __init__(self, db: Backend, scope: NodeScope) -> None:
        self.db, self.scope = db, scope

    def set_activity(self, record: ActivityRecord) -> None:
        """Store a key's activity; "active" with no note deletes the row (active is the default)."""
        if record.state not in ACTIVITY_STATES:
            raise UsageError(
                f"'{record.state}' is not an activity state: use one of {', '.join(ACTIVITY_STATES)}."
            )
        domain = _dom(record.domain)
        updated_at = record.updated_at or time.time()

        only, node = self.scope.only()

        def run(conn: Connection) -> None:
            if record.state == "active" and not record.note:
                conn.execute(f"DELETE FROM activity WHERE domain = ? AND key = ?{only}", (domain, record.key, *node))
            else:
                conn.execute(
                    self.db.dialect.upsert(
                        "activity", ("node", "domain", "key", "state", "note", "actor", "updated_at"),
                        ("node", "domain", "key")),
                    (self.scope.node, domain, record.key, record.state, record.note, record.actor, updated_at),
                )

        self.db.write(run)

    @staticmethod
    def _activity(row: Row) -> ActivityRecord:
        return ActivityRecord(
            domain=row["domain"], key=row["key"], state=row["state"], note=row["note"],
            actor=row["actor"], updated_at=row["updated_at"],
        )

    def get_activity(self, domain: Domain | str, key: str) -> ActivityRecord | None:
        only, node = self.scope.only()
        rows = self.db.read(f"SELECT * FROM activity WHERE domain = ? AND key = ?{only}", (_dom(domain), key, *node))
        return self._activity(rows[0]) if rows else None

    def all_activity(self) -> list[ActivityRecord]:
        only, node = self.scope.only(" WHERE ")
        return [self._activity(r) for r in self.db.read(f"SELECT * FROM activity{only} ORDER BY domain, key", node)]
