"""Incidents and their recorded timelines (runbooks/incidents.py holds their rules)."""

from __future__ import annotations

from typing import Any

from .backend import Backend, Row
from .codec import _loads
from .records import IncidentEntryRecord, IncidentRecord
from .scope import NodeScope

INCIDENT_FIELDS = ("title", "severity", "status", "commander", "opened_at", "closed_at", "refs", "tree",
                   "summary", "impact", "root_cause", "resolution", "follow_ups", "node")


def _incident(row: Row) -> IncidentRecord:
    refs, follow_ups = _loads(row["refs"], []), _loads(row["follow_ups"], [])
    return IncidentRecord(
        id=int(row["id"]), title=row["title"], severity=row["severity"], status=row["status"],
        commander=row["commander"], opened_at=float(row["opened_at"]), closed_at=row["closed_at"],
        refs=[str(r) for r in refs] if isinstance(refs, list) else [], tree=row["tree"],
        summary=row["summary"] or "", impact=row["impact"] or "", root_cause=row["root_cause"] or "",
        resolution=row["resolution"] or "", follow_ups=list(follow_ups) if isinstance(follow_ups, list) else [],
        node=row["node"],
    )


def _entry(row: Row) -> IncidentEntryRecord:
    data = _loads(row["data"], {})
    return IncidentEntryRecord(id=int(row["id"]), incident_id=int(row["incident_id"]), ts=float(row["ts"]),
                               kind=row["kind"], actor=row["actor"], text=row["text"],
                               data=data if isinstance(data, dict) else {})


class IncidentRepo:
    INCIDENT_FIELDS = INCIDENT_FIELDS

    def __init__(self, db: Backend, scope: NodeScope) -> None:
        self.db, self.scope = db, scope

    def add_incident(self, values: dict[str, Any]) -> int:
        """Insert an incident row (columns of INCIDENT_FIELDS; refs and follow_ups as JSON text),
        opened on this process's node; its id."""
        values = {**values, "node": values.get("node") or self.scope.node}
        cols = [f for f in INCIDENT_FIELDS if f in values]
        sql = f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        return self.db.write(lambda conn: self.db.dialect.insert_id(conn, sql, [values[c] for c in cols]))

    def update_incident(self, incident_id: int, values: dict[str, Any]) -> None:
        cols = [f for f in INCIDENT_FIELDS if f in values]
        if not cols:
            return
        sql = f"UPDATE incidents SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?"
        self.db.write(lambda conn: conn.execute(sql, [*(values[c] for c in cols), int(incident_id)]))

    def get_incident(self, incident_id: int) -> IncidentRecord | None:
        rows = self.db.read("SELECT * FROM incidents WHERE id = ?", (int(incident_id),))
        return _incident(rows[0]) if rows else None

    def incidents(self, *, status: str | None = None, limit: int = 100) -> list[IncidentRecord]:
        """Incidents, newest first."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.db.read(f"SELECT * FROM incidents {where} ORDER BY id DESC LIMIT ?", (*params, int(limit)))
        return [_incident(r) for r in rows]

    def add_incident_entry(self, incident_id: int, ts: float, kind: str, actor: str | None, text: str,
                           data: str = "{}") -> None:
        self.db.write(lambda conn: conn.execute(
            "INSERT INTO incident_timeline (incident_id, ts, kind, actor, text, data) VALUES (?, ?, ?, ?, ?, ?)",
            (int(incident_id), ts, kind, actor, text, data)))

    def incident_entries(self, incident_id: int) -> list[IncidentEntryRecord]:
        """An incident's recorded timeline, oldest first."""
        rows = self.db.read("SELECT * FROM incident_timeline WHERE incident_id = ? ORDER BY ts, id",
                            (int(incident_id),))
        return [_entry(r) for r in rows]
