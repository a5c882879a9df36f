"""Rollouts and their steps in a fleet store: what rollout.py's coordinator reads and writes.
Who asked and who decided are stamped by the database (pg_migrations.py step 11); a decision
goes through the database's function, which holds the two-person rule itself."""

from __future__ import annotations

import json
import time
from typing import Any

from .backend import Backend, Connection, Row
from .codec import _loads
from .records import RolloutRecord, RolloutStep, StoreError

_STEP_FIELDS = ("from_provider", "status", "request_id", "message", "started_at", "soak_from", "finished_at")


class RolloutRepo:
    def __init__(self, db: Backend) -> None:
        self.db = db

    def require_fleet(self, what: str) -> None:
        if self.db.holds_one_node:
            raise StoreError(f"cannot {what}: the store {self.db.where} is one node's (a SQLite file); a rollout "
                             "goes over the nodes of a fleet store (docs/fleet.md), and one node swaps with "
                             "'oneiric swap'")

    @staticmethod
    def _step(row: Row) -> RolloutStep:
        return RolloutStep(int(row["rollout_id"]), row["node"], int(row["batch"]), row["from_provider"],
                           row["status"], row["request_id"], row["message"] or "", row["started_at"],
                           row["soak_from"], row["finished_at"])

    def _record(self, row: Row, steps: list[RolloutStep]) -> RolloutRecord:
        plan, options = _loads(row["plan"], []), _loads(row["options"], {})
        return RolloutRecord(
            id=int(row["id"]), domain=row["domain"], key=row["key"], provider=row["provider"],
            plan=[[str(n) for n in batch] for batch in plan] if isinstance(plan, list) else [],
            options=options if isinstance(options, dict) else {}, reason=row["reason"] or "",
            display=row["display"], requested_by_id=row["requested_by_id"], created_at=row["created_at"],
            status=row["status"], decided_by_id=row["decided_by_id"], decided_at=row["decided_at"],
            batch=int(row["batch"]), halted_reason=row["halted_reason"], coordinator=row["coordinator"],
            coordinator_at=row["coordinator_at"], updated_at=row["updated_at"], steps=steps)

    def create(self, domain: str, key: str, provider: str, plan: list[list[str]], options: dict[str, Any],
               reason: str, display: str | None) -> int:
        """A rollout (pending: it needs its one approval) with a pending step per node; its id."""
        self.require_fleet("start a rollout")
        now = time.time()

        def run(conn: Connection) -> int:
            rollout_id = self.db.dialect.insert_id(
                conn, "INSERT INTO rollouts (domain, key, provider, plan, options, reason, display, requested_by_id, "
                "created_at, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, 'pending', ?)",
                (domain, key, provider, json.dumps(plan), json.dumps(options, sort_keys=True), reason, display, now))
            conn.executemany("INSERT INTO rollout_steps (rollout_id, node, batch) VALUES (?, ?, ?)",
                             [(rollout_id, node, index) for index, batch in enumerate(plan) for node in batch])
            self.db.notify(conn, "rollout", str(rollout_id))
            return rollout_id

        return self.db.write(run)

    def get(self, rollout_id: int) -> RolloutRecord | None:
        rows = self.db.read("SELECT * FROM rollouts WHERE id = ?", (int(rollout_id),))
        if not rows:
            return None
        steps = [self._step(r) for r in self.db.read(
            "SELECT * FROM rollout_steps WHERE rollout_id = ? ORDER BY batch, node", (int(rollout_id),))]
        return self._record(rows[0], steps)

    def active(self) -> list[RolloutRecord]:
        """The rollouts a coordinator carries on (approved, running, halting), oldest first."""
        if self.db.holds_one_node:
            return []
        ids = [int(r[0]) for r in self.db.read(
            "SELECT id FROM rollouts WHERE status IN ('approved', 'running', 'halting') ORDER BY id")]
        return [r for i in ids if (r := self.get(i)) is not None]

    def recent(self, limit: int = 20) -> list[RolloutRecord]:
        if self.db.holds_one_node:
            return []
        ids = [int(r[0]) for r in self.db.read("SELECT id FROM rollouts ORDER BY id DESC LIMIT ?", (int(limit),))]
        return [r for i in ids if (r := self.get(i)) is not None]

    def decide(self, rollout_id: int, verdict: str, *, two_person: bool) -> str:
        """'decided', or why not: 'missing', 'same person', or the rollout's status."""
        self.require_fleet("decide a rollout")
        rows = self.db.write(lambda conn: conn.execute("SELECT oneiric_decide_rollout(?, ?, ?)",
                                                       (int(rollout_id), verdict, bool(two_person))).fetchall())
        return str(rows[0][0])

    def claim(self, rollout_id: int, node: str, stale_after_s: float) -> bool:
        """Coordinate this rollout from `node`: when nobody does, it is ours already, or its
        coordinator went quiet for `stale_after_s` (died or hung). True when it is ours."""
        now = time.time()
        return bool(self.db.write(lambda conn: conn.execute(
            "UPDATE rollouts SET coordinator = ?, coordinator_at = ? WHERE id = ? AND status IN ('approved', "
            "'running', 'halting') AND (coordinator IS NULL OR coordinator = ? OR coordinator_at < ?)",
            (node, now, int(rollout_id), node, now - stale_after_s)).rowcount))

    def update(self, rollout_id: int, *, node: str, **values: Any) -> bool:
        """Set `values` on the rollout while `node` coordinates it; False when it no longer does."""
        allowed = {"status", "batch", "halted_reason"}
        cols = sorted(values)
        if not set(cols) <= allowed:
            raise ValueError(f"not rollout columns: {sorted(set(cols) - allowed)}")
        sets = ", ".join(f"{c} = ?" for c in cols)

        def run(conn: Connection) -> int:
            changed = conn.execute(f"UPDATE rollouts SET {sets}, updated_at = ? WHERE id = ? AND coordinator = ?",
                                   (*(values[c] for c in cols), time.time(), int(rollout_id), node)).rowcount
            self.db.notify(conn, "rollout", str(rollout_id))
            return int(changed)

        return bool(self.db.write(run))

    def update_step(self, step: RolloutStep, **values: Any) -> None:
        cols = sorted(values)
        if not set(cols) <= set(_STEP_FIELDS):
            raise ValueError(f"not step columns: {sorted(set(cols) - set(_STEP_FIELDS))}")
        for c in cols:
            setattr(step, c, values[c])

        def run(conn: Connection) -> None:
            conn.execute(f"UPDATE rollout_steps SET {', '.join(f'{c} = ?' for c in cols)} WHERE rollout_id = ? "
                         "AND node = ?", (*(values[c] for c in cols), step.rollout_id, step.node))
            self.db.notify(conn, "rollout", str(step.rollout_id))

        self.db.write(run)
