"""The activity table: keys an operator paused, or that are draining (active is the default)."""

from __future__ import annotations

import time

from ..domains import Domain
from ..errors import UsageError
from .backend import Backend, Connection, Row
from .codec import _dom
from .records import ACTIVITY_STATES, ActivityRecord


class ActivityRepo:
    def __init__(self, db: Backend) -> None:
        self.db = db

    def set_activity(self, record: ActivityRecord) -> None:
        """Store a key's activity; "active" with no note deletes the row (active is the default)."""
        if record.state not in ACTIVITY_STATES:
            raise UsageError(
                f"'{record.state}' is not an activity state: use one of {', '.join(ACTIVITY_STATES)}."
            )
        domain = _dom(record.domain)
        updated_at = record.updated_at or time.time()

        def run(conn: Connection) -> None:
            if record.state == "active" and not record.note:
                conn.execute("DELETE FROM activity WHERE domain = ? AND key = ?", (domain, record.key))
            else:
                conn.execute(
                    self.db.dialect.upsert("activity", ("domain", "key", "state", "note", "actor", "updated_at"),
                                           ("domain", "key")),
                    (domain, record.key, record.state, record.note, record.actor, updated_at),
                )

        self.db.write(run)

    @staticmethod
    def _activity(row: Row) -> ActivityRecord:
        return ActivityRecord(
            domain=row["domain"], key=row["key"], state=row["state"], note=row["note"],
            actor=row["actor"], updated_at=row["updated_at"],
        )

    def get_activity(self, domain: Domain | str, key: str) -> ActivityRecord | None:
        rows = self.db.read("SELECT * FROM activity WHERE domain = ? AND key = ?", (_dom(domain), key))
        return self._activity(rows[0]) if rows else None

    def all_activity(self) -> list[ActivityRecord]:
        return [self._activity(r) for r in self.db.read("SELECT * FROM activity ORDER BY domain, key")]
