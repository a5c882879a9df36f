"""The command record: one row per command the host received over its socket
(host_session.py), who asked for what and what came of it, never an inbox. Sealed like
proposals: a row the host did not write fails its seal and is refused, never run."""

from __future__ import annotations

import json
import time
from typing import Any

from .backend import Backend, Connection, Row
from .codec import _loads
from .records import CommandRecord
from .scope import NodeScope
from .seals import Seals


class CommandRepo:
    def __init__(self, db: Backend, seals: Seals, scope: NodeScope) -> None:
        self.db, self.seals, self.scope = db, seals, scope

    _COMMAND_FIELDS = ("kind", "args", "requested_by", "requested_by_id", "created_at", "status",
                       "started_at", "result", "exit_code", "finished_at")

    def _command(self, row: Row) -> CommandRecord:
        args = _loads(row["args"], {})
        result = _loads(row["result"], None)
        seal = self.seals.seal
        sealed = None if seal is None else seal.check(
            "commands", row["id"], [row[f] for f in self._COMMAND_FIELDS], row["seal"])
        return CommandRecord(
            kind=row["kind"], args=args if isinstance(args, dict) else {},
            requested_by=row["requested_by"], created_at=row["created_at"], deadline=row["deadline"],
            status=row["status"], started_at=row["started_at"],
            result=result if isinstance(result, dict) else None, exit_code=row["exit_code"],
            finished_at=row["finished_at"], id=row["id"], requested_by_id=row["requested_by_id"], sealed=sealed,
        )

    def _reseal_command(self, conn: Connection, command_id: int) -> None:
        row = conn.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        if row is not None:
            seal = self.seals.sealer("a command").seal("commands", command_id, [row[f] for f in self._COMMAND_FIELDS])
            conn.execute("UPDATE commands SET seal = ? WHERE id = ?", (seal, command_id))

    def record_command(self, kind: str, args: dict[str, Any], requested_by: str, requested_by_id: str, *,
                       now: float | None = None) -> CommandRecord:
        """The host took a command: store it as running, sealed; returns it with its id."""
        self.seals.sealer("a command")
        at = time.time() if now is None else now
        record = CommandRecord(kind, dict(args), requested_by, at, status="running", started_at=at,
                               requested_by_id=requested_by_id, sealed=True)
        params = (kind, json.dumps(record.args, default=str, sort_keys=True), requested_by, requested_by_id, at, at,
                  self.scope.node)

        def run(conn: Connection) -> int:
            row_id = self.db.dialect.insert_id(
                conn, "INSERT INTO commands (kind, args, requested_by, requested_by_id, created_at, status, "
                "started_at, node) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)", params)
            self._reseal_command(conn, row_id)
            return row_id

        record.id = self.db.write(run)
        return record

    def get_command(self, command_id: int) -> CommandRecord | None:
        rows = self.db.read("SELECT * FROM commands WHERE id = ?", (int(command_id),))
        return self._command(rows[0]) if rows else None

    def commands_after(self, command_id: int, limit: int = 1000) -> list[CommandRecord]:
        """This node's command rows with an id above `command_id`, oldest first (the host's
        tamper scan: on a fleet store each host seals its own node's rows with its own key)."""
        only, node = self.scope.only()
        rows = self.db.read(f"SELECT * FROM commands WHERE id > ?{only} ORDER BY id LIMIT ?",
                            (int(command_id), *node, int(limit)))
        return [self._command(r) for r in rows]

    def finish_command(self, command_id: int, status: str, result: dict[str, Any], exit_code: int,
                       now: float | None = None) -> None:
        """Store a command's outcome (`done`, `failed` or `refused`), sealed."""
        at = time.time() if now is None else now
        text = json.dumps(result, default=str, sort_keys=True)

        def run(conn: Connection) -> None:
            conn.execute("UPDATE commands SET status = ?, result = ?, exit_code = ?, finished_at = ? WHERE id = ?",
                         (status, text, int(exit_code), at, int(command_id)))
            self._reseal_command(conn, int(command_id))

        self.db.write(run)

    def fail_running_commands(self, reason: str, exit_code: int = 1, now: float | None = None) -> int:
        """Close the commands a previous host took but never answered (it died); returns how many."""
        at = time.time() if now is None else now
        text = json.dumps({"data": {}, "message": reason}, sort_keys=True)

        def run(conn: Connection) -> int:
            only, node = self.scope.only()
            ids = [r[0] for r in conn.execute(f"SELECT id FROM commands WHERE status = 'running'{only}", node)]
            for row_id in ids:
                conn.execute("UPDATE commands SET status = 'failed', result = ?, exit_code = ?, finished_at = ? "
                             "WHERE id = ?", (text, int(exit_code), at, row_id))
                self._reseal_command(conn, row_id)
            return len(ids)

        return self.db.write(run)

    def last_command_id(self) -> int:
        rows = self.db.read("SELECT COALESCE(MAX(id), 0) FROM commands")
        return int(rows[0][0])

    def prune_commands(self, max_age_s: float, now: float | None = None) -> int:
        """Delete finished commands older than `max_age_s`; returns how many."""
        cutoff = (time.time() if now is None else now) - max_age_s
        return int(self.db.write(lambda conn: conn.execute(
            "DELETE FROM commands WHERE status NOT IN ('pending', 'running') AND created_at < ?",
            (cutoff,)).rowcount))
