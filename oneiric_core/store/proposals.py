"""Swap proposals and their decisions (change control; approvals.py holds the rules). Every
row is sealed by the host's key (seal.py): a row that fails its seal was not written by it."""

from __future__ import annotations

from .backend import Backend, Connection, Row
from .codec import _dom
from .records import ProposalRecord
from .scope import NodeScope
from .seals import Seals


class ProposalRepo:
    def __init__(self, db: Backend, seals: Seals, scope: NodeScope) -> None:
        self.db, self.seals, self.scope = db, seals, scope

    _PROPOSAL_FIELDS = (
        "domain", "key", "from_provider", "to_provider", "to_source", "force", "source", "reason",
        "requested_by", "created_at", "expires_at", "status", "decided_by", "decided_at", "comment",
        "outcome", "outcome_reason", "requested_by_id", "decided_by_id",
    )

    def put_proposal(self, record: ProposalRecord) -> ProposalRecord:
        """Insert a new proposal (sets `record.id`) or update an existing one, sealed."""
        sealer = self.seals.sealer("a proposal")
        values = [getattr(record, f) for f in self._PROPOSAL_FIELDS]
        values[0] = _dom(values[0])
        values[5] = int(bool(values[5]))
        columns = ", ".join(self._PROPOSAL_FIELDS)

        def run(conn: Connection) -> int:
            row_id = record.id
            if row_id is None:
                row_id = self.db.dialect.insert_id(
                    conn, f"INSERT INTO proposals ({columns}, node) VALUES ({', '.join('?' for _ in values)}, ?)",
                    [*values, self.scope.node])
            else:
                conn.execute(f"UPDATE proposals SET {', '.join(f + ' = ?' for f in self._PROPOSAL_FIELDS)} "
                             "WHERE id = ?", [*values, row_id])
            conn.execute("UPDATE proposals SET seal = ? WHERE id = ?",
                         (sealer.seal("proposals", row_id, values), row_id))
            return row_id

        record.id = self.db.write(run)
        record.sealed = True
        return record

    def _proposal(self, row: Row) -> ProposalRecord:
        values = [row[f] for f in self._PROPOSAL_FIELDS]
        data = dict(zip(self._PROPOSAL_FIELDS, values, strict=True))
        data["force"] = bool(data["force"])
        seal = self.seals.seal
        # Another node's row is sealed by its own host's key, which this process does not hold:
        # not ours to check (that host checks it before deciding), so neither good nor bad here.
        theirs = self.scope.shared and row["node"] != self.scope.node
        sealed = None if seal is None or theirs else seal.check("proposals", row["id"], values, row["seal"])
        return ProposalRecord(id=row["id"], sealed=sealed, node=row["node"], **data)

    def get_proposal(self, proposal_id: int) -> ProposalRecord | None:
        only, node = self.scope.only()
        rows = self.db.read(f"SELECT * FROM proposals WHERE id = ?{only}", (int(proposal_id), *node))
        return self._proposal(rows[0]) if rows else None

    def find_proposal(self, proposal_id: int) -> ProposalRecord | None:
        """Proposal #`proposal_id` of any node (ids are one sequence in a store): to show it,
        and to send its decision to its own node's host (operator_port.FleetRoute)."""
        rows = self.db.read("SELECT * FROM proposals WHERE id = ?", (int(proposal_id),))
        return self._proposal(rows[0]) if rows else None

    def proposals(self, *, status: str | None = None, limit: int = 200, fleet: bool = False) -> list[ProposalRecord]:
        """This node's newest `limit` proposals (optionally of one status), oldest first: on a
        fleet store a proposal is for the node whose host wrote it, and only that host may
        decide and apply it. `fleet`: every node's (to list, never to act on)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        only, node = ("", ()) if fleet else self.scope.only(" AND " if where else "WHERE ")
        where, params = f"{where}{only}", [*params, *node]
        rows = self.db.read(
            f"SELECT * FROM (SELECT * FROM proposals {where} ORDER BY id DESC LIMIT ?) AS newest ORDER BY id",
            (*params, int(limit)),
        )
        return [self._proposal(r) for r in rows]
