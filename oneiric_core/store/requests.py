"""Requests for a node's host, through the store: how an operator anywhere in a fleet acts
on a node whose host's socket is on another machine (operator_port.OverStore). The writer
inserts a row for the node; the database stamps who wrote it (the session's role) and wakes
the node's host (NOTIFY, pg_migrations.py step 10); the host takes it, runs it as it runs a
request from its socket, and writes the result, which wakes the writer.

A SQLite file is one node's, whose host takes requests over its socket: it has no inbox."""

from __future__ import annotations

import json
import time
from typing import Any

from .backend import Backend, Connection, Row
from .codec import _loads
from .pg_migrations import ROLES
from .records import RequestRecord, StoreError


class RequestRepo:
    def __init__(self, db: Backend) -> None:
        self.db = db

    def _require_shared(self, what: str) -> None:
        if self.db.holds_one_node:
            raise StoreError(f"cannot {what} through the state store {self.db.where}: a SQLite file is one "
                             "node's, whose host takes requests over its socket")

    @staticmethod
    def _record(row: Row) -> RequestRecord:
        args, result = _loads(row["args"], {}), _loads(row["result"], None)
        return RequestRecord(
            id=int(row["id"]), node=row["node"], kind=row["kind"], args=args if isinstance(args, dict) else {},
            display=row["display"], requested_by_id=row["requested_by_id"], created_at=row["created_at"],
            deadline=row["deadline"], status=row["status"], taken_at=row["taken_at"], command_id=row["command_id"],
            result=result if isinstance(result, dict) else None, exit_code=row["exit_code"],
            finished_at=row["finished_at"],
        )

    def submit(self, node: str, kind: str, args: dict[str, Any], display: str | None, deadline: float) -> int:
        """A request for `node`'s host; its id. The database fills in who and when."""
        self._require_shared("send a request")
        text = json.dumps(args, default=str, sort_keys=True)
        return self.db.write(lambda conn: self.db.dialect.insert_id(
            conn, "INSERT INTO requests (node, kind, args, display, deadline, requested_by_id, created_at, status) "
            "VALUES (?, ?, ?, ?, ?, '', 0, '')", (node, kind, text, display, deadline)))

    def get(self, request_id: int) -> RequestRecord | None:
        rows = self.db.read("SELECT * FROM requests WHERE id = ?", (int(request_id),))
        return self._record(rows[0]) if rows else None

    def take(self, node: str, limit: int = 20) -> list[RequestRecord]:
        """The host of `node` takes its pending requests, oldest first."""
        now = time.time()

        def run(conn: Connection) -> list[RequestRecord]:
            rows = conn.execute(
                "UPDATE requests SET status = 'taken', taken_at = ? WHERE id IN (SELECT id FROM requests "
                "WHERE node = ? AND status = 'pending' ORDER BY id LIMIT ?) RETURNING *", (now, node, limit)).fetchall()
            return sorted((self._record(r) for r in rows), key=lambda r: r.id)

        return self.db.write(run)

    def finish(self, request_id: int, status: str, result: dict[str, Any], exit_code: int,
               command_id: int | None) -> None:
        text = json.dumps(result, default=str, sort_keys=True)

        def run(conn: Connection) -> None:
            conn.execute("UPDATE requests SET status = ?, result = ?, exit_code = ?, finished_at = ?, command_id = ? "
                         "WHERE id = ?", (status, text, int(exit_code), time.time(), command_id, int(request_id)))
            self.db.notify(conn, "request-done", str(request_id))

        self.db.write(run)

    def roles_of(self, role: str) -> frozenset[str]:
        """The store's roles (pg_migrations.ROLES) that `role` is a member of, or a superuser
        holds: what its rights are by default (access.py)."""
        rows = self.db.read(
            "SELECT r.rolname FROM pg_roles r, pg_roles me WHERE me.rolname = ? AND r.rolname IN (?, ?, ?) "
            "AND (me.rolsuper OR pg_has_role(me.oid, r.oid, 'MEMBER'))", (role, *ROLES))
        return frozenset(str(r[0]) for r in rows)

    def withdraw(self, request_id: int) -> bool:
        """Take back a request no host took yet (the writer stopped waiting): True when it was
        still pending, so it will never run."""
        return bool(self.db.write(lambda conn: conn.execute(
            "UPDATE requests SET status = 'withdrawn', finished_at = ? WHERE id = ? AND status = 'pending'",
            (time.time(), int(request_id))).rowcount))
