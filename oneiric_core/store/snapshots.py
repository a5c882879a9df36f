"""The lifecycle and health snapshots the host writes for its clients, one row per domain/key."""

from __future__ import annotations

import json
import time
from typing import Any

from ..domains import Domain
from .backend import Backend, Row
from .codec import _dom, _loads
from .records import FleetCellRow, HealthSnapshot, LifecycleSnapshot
from .scope import NodeScope

_LIFECYCLE_COLUMNS = ("node", "domain", "key", "state", "provider", "source", "pending_provider", "last_error",
                      "inflight", "last_swap", "updated_at")
_HEALTH_COLUMNS = ("node", "domain", "key", "provider", "status", "latency_ms", "message", "checked_at", "changed_at",
                   "samples")


_UNREAD = object()  # _lifecycle: the row's last swap is still to be decoded


class SnapshotRepo:
    """A node's snapshots (scope.py: on a shared store, each node reads and clears its own)."""

    def __init__(self, db: Backend, scope: NodeScope) -> None:
        self.db, self.scope = db, scope

    def put_lifecycle(self, snap: LifecycleSnapshot) -> None:
        params = (
            self.scope.node, _dom(snap.domain), snap.key, snap.state, snap.provider, snap.source,
            snap.pending_provider, snap.last_error, int(snap.inflight),
            None if snap.last_swap is None else json.dumps(snap.last_swap, default=str),
            snap.updated_at or time.time(),
        )
        self.db.write(
            lambda conn: conn.execute(
                self.db.dialect.upsert("lifecycle", _LIFECYCLE_COLUMNS, ("node", "domain", "key")),
                params,
            )
        )

    @staticmethod
    def _lifecycle(row: Row, last_swap: Any = _UNREAD) -> LifecycleSnapshot:
        return LifecycleSnapshot(
            domain=row["domain"], key=row["key"], state=row["state"], provider=row["provider"],
            source=row["source"], pending_provider=row["pending_provider"],
            last_error=row["last_error"], inflight=row["inflight"],
            last_swap=_loads(row["last_swap"], None) if last_swap is _UNREAD else last_swap,
            updated_at=row["updated_at"],
        )

    def get_lifecycle(self, domain: Domain | str, key: str) -> LifecycleSnapshot | None:
        only, node = self.scope.only()
        rows = self.db.read(f"SELECT * FROM lifecycle WHERE domain = ? AND key = ?{only}", (_dom(domain), key, *node))
        return self._lifecycle(rows[0]) if rows else None

    def all_lifecycle(self) -> list[LifecycleSnapshot]:
        """Every key's snapshot. The last swaps are decoded in one json.loads over all of them
        (2,500 separate calls were half of reading 2,500 rows); a row whose text does not parse
        falls back to the one-row decoding, which reads it as None."""
        only, node = self.scope.only(" WHERE ")
        rows = self.db.read(f"SELECT * FROM lifecycle{only} ORDER BY domain, key", node)
        texts = [r["last_swap"] for r in rows]
        try:
            swaps = json.loads("[" + ",".join(t or "null" for t in texts) + "]")
        except (TypeError, ValueError):
            return [self._lifecycle(r) for r in rows]
        if len(swaps) != len(rows):  # a text that held more than one value
            return [self._lifecycle(r) for r in rows]
        return [self._lifecycle(r, swap) for r, swap in zip(rows, swaps, strict=True)]

    def clear_lifecycle(self) -> None:
        only, node = self.scope.only(" WHERE ")
        self.db.write(lambda conn: conn.execute(f"DELETE FROM lifecycle{only}", node))

    # ------------------------------------------------------------------ health snapshots

    def put_health(self, snap: HealthSnapshot) -> None:
        """Store the latest health of a key (one row per domain/key, whatever the provider)."""
        params = (
            self.scope.node, _dom(snap.domain), snap.key, snap.provider, str(snap.status), snap.latency_ms,
            snap.message or "", snap.checked_at, snap.changed_at, json.dumps(list(snap.samples)),
        )
        self.db.write(
            lambda conn: conn.execute(
                self.db.dialect.upsert("health", _HEALTH_COLUMNS, ("node", "domain", "key")),
                params,
            )
        )

    @staticmethod
    def _health(row: Row) -> HealthSnapshot:
        samples = _loads(row["samples"], [])
        return HealthSnapshot(
            domain=row["domain"], key=row["key"], provider=row["provider"], status=row["status"],
            latency_ms=row["latency_ms"], message=row["message"] or "",
            checked_at=row["checked_at"], changed_at=row["changed_at"],
            samples=list(samples) if isinstance(samples, list) else [],
        )

    def get_health(self, domain: Domain | str, key: str) -> HealthSnapshot | None:
        only, node = self.scope.only()
        rows = self.db.read(f"SELECT * FROM health WHERE domain = ? AND key = ?{only}", (_dom(domain), key, *node))
        return self._health(rows[0]) if rows else None

    def all_health(self) -> list[HealthSnapshot]:
        only, node = self.scope.only(" WHERE ")
        return [self._health(r) for r in self.db.read(f"SELECT * FROM health{only} ORDER BY domain, key", node)]

    def clear_health(self) -> None:
        only, node = self.scope.only(" WHERE ")
        self.db.write(lambda conn: conn.execute(f"DELETE FROM health{only}", node))

    # ------------------------------------------------------------------ the fleet's

    def fleet_cells(self) -> list[FleetCellRow]:
        """What every node serves per key and its health, in one narrow read (the fleet view:
        50 nodes x 200 keys is 10,000 rows, which whole snapshots took 0.2 s to decode)."""
        rows = self.db.read(
            "SELECT l.node, l.domain, l.key, l.provider, l.state, h.status FROM lifecycle l LEFT JOIN health h"
            " ON h.domain = l.domain AND h.key = l.key AND COALESCE(h.node, '') = COALESCE(l.node, '')"
            " ORDER BY l.node, l.domain, l.key")
        return [FleetCellRow(r["node"], r["domain"], r["key"], r["provider"], r["state"], r["status"]) for r in rows]

    def lifecycle_of(self, node: str, domain: Domain | str, key: str) -> LifecycleSnapshot | None:
        """`node`'s snapshot of a key, whichever node this process is (a rollout's coordinator)."""
        only, scope = ("", ()) if self.db.holds_one_node else (" AND node = ?", (node,))
        rows = self.db.read(f"SELECT * FROM lifecycle WHERE domain = ? AND key = ?{only}", (_dom(domain), key, *scope))
        return self._lifecycle(rows[0]) if rows else None

    def health_of(self, node: str, domain: Domain | str, key: str) -> HealthSnapshot | None:
        only, scope = ("", ()) if self.db.holds_one_node else (" AND node = ?", (node,))
        rows = self.db.read(f"SELECT * FROM health WHERE domain = ? AND key = ?{only}", (_dom(domain), key, *scope))
        return self._health(rows[0]) if rows else None
