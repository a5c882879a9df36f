"""Journal retention: pruning the oldest rows, a prefix by id so the chain stays whole,
short of what an open incident keeps (retention.py paces the host's prunes)."""

from __future__ import annotations

import json
import time
from typing import Any

from .backend import Backend, Connection
from .codec import _dom, _loads
from .journal import JournalRepo
from .records import (
    ANCHOR_META,
    INCIDENT_WINDOW_LEAD_S,
    PRUNE_BATCH_ROWS,
    RECLAIM_BATCH_PAGES,
    PruneStep,
    RetentionHold,
)


class PruneRepo:
    """Deletes journal rows by age and count; the anchor moves with them."""

    def __init__(self, db: Backend, journal: JournalRepo) -> None:
        self.db, self.journal = db, journal

    def prune_journal(
        self, *, max_age_s: float | None, max_rows: int | None, now: float | None = None
    ) -> int:
        """Delete events older than `max_age_s`, then all but the newest `max_rows`, short of
        what an open incident keeps, and give the space back; returns the count. Runs to the
        end in the calling thread, in transactions of PRUNE_BATCH_ROWS rows: the host prunes
        through retention.py instead, off its event loop and with pauses between them."""
        cutoff = None if max_age_s is None else (time.time() if now is None else now) - max_age_s
        through = self.journal_rows_through(max_rows)
        total = 0
        while True:
            step = self.prune_journal_batch(cutoff=cutoff, rows_through=through, limit=PRUNE_BATCH_ROWS)
            total += step.deleted
            if step.done:
                break
        maintenance = self.db.maintenance
        while maintenance is not None and maintenance.reclaim_space(RECLAIM_BATCH_PAGES):
            pass
        return total

    def journal_rows_through(self, max_rows: int | None, *, step: int = 20_000) -> int | None:
        """The highest id that "all but the newest `max_rows`" lets go (None: none, or no
        limit). Counted down from the newest row `step` rows per read, so no read holds the
        store for long however large `max_rows` is (OFFSET walks the rows it skips)."""
        if max_rows is None:
            return None
        left, below = max(0, int(max_rows)), None
        while True:
            skip = min(left, step)
            where, params = ("", [skip]) if below is None else ("WHERE id < ? ", [below, skip])
            rows = self.db.read(f"SELECT id FROM journal {where}ORDER BY id DESC LIMIT 1 OFFSET ?", params)
            if not rows:
                return None
            if skip == left:
                return int(rows[0][0])
            left -= skip
            below = int(rows[0][0])

    def prune_journal_batch(self, *, cutoff: float | None, rows_through: int | None, limit: int) -> PruneStep:
        """One prune transaction over the oldest `limit` rows at most: the rows older than
        `cutoff` (up to the first younger one) or at or below `rows_through` go, except that it
        stops at the first row an open incident keeps (`_first_held_row`).

        Only ever the oldest rows go (a prefix by id), so the chain stays whole, and the last
        row deleted becomes the anchor the first row left is checked against. That is also
        why an open incident holds back everything after its first kept row, not just its
        own rows: a row deleted between kept ones would be a hole `journal verify` names."""
        limit = max(1, int(limit))

        def run(conn: Connection) -> PruneStep:
            edge = conn.execute("SELECT id FROM journal ORDER BY id LIMIT 1 OFFSET ?", (limit - 1,)).fetchone()
            last_id = int(edge[0]) if edge is not None else conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
            if last_id is None:
                return PruneStep(0, True)
            through: int | None = None  # the highest id to delete in this batch
            if cutoff is not None:
                young = conn.execute("SELECT id FROM journal WHERE id <= ? AND ts >= ? ORDER BY id LIMIT 1",
                                     (last_id, cutoff)).fetchone()
                through = last_id if young is None else int(young[0]) - 1
            if rows_through is not None:
                through = max(through if through is not None else -(1 << 62), min(last_id, rows_through))
            if through is None:
                return PruneStep(0, True)
            held = self._first_held_row(conn, through)
            if held is not None:
                through = held.first_id - 1
            last = conn.execute("SELECT id, hash FROM journal WHERE id <= ? ORDER BY id DESC LIMIT 1",
                                (through,)).fetchone()
            if last is None:
                return PruneStep(0, True, held)
            # the last pruned row's hash; a row without one (written around the store) chains nothing
            chained = last[1] or self.journal._chain_tip_below(conn, through)
            conn.execute(self.db.dialect.upsert("meta", ("key", "value"), ("key",)),
                         (ANCHOR_META, json.dumps({"id": last[0], "hash": chained})))
            self.journal._anchor_nodes(conn, through)  # and each node's chain its own last pruned row
            deleted = int(conn.execute("DELETE FROM journal WHERE id <= ?", (through,)).rowcount)
            return PruneStep(deleted, held is not None or through < last_id or edge is None, held)

        return self.db.write(run)

    @staticmethod
    def _open_incidents(conn: Connection) -> list[tuple[int, str, float, list[tuple[str | None, str]]]]:
        """The incidents not closed (open or mitigated), oldest first: id, title, opened_at and
        the components they involve as (domain, key), read inside the caller's transaction."""
        out = []
        for row in conn.execute("SELECT id, title, opened_at, refs FROM incidents WHERE status != 'closed' "
                                "ORDER BY id"):
            refs = _loads(row[3], [])
            pairs = []
            for ref in refs if isinstance(refs, list) else []:
                domain, sep, key = str(ref).partition("/")
                if sep and key:
                    pairs.append((_dom(domain), key))
            out.append((int(row[0]), str(row[1]), float(row[2]), pairs))
        return out

    def _first_held_row(self, conn: Connection, through: int) -> RetentionHold | None:
        """The first row at or below `through` that an open incident keeps, and which one:
        every event of a component it involves, and every event from its window on (from
        INCIDENT_WINDOW_LEAD_S before it opened, as its timeline shows them). The rows looked
        at are this batch's alone (everything below was pruned), so the scan stays short."""
        incidents = self._open_incidents(conn)
        if not incidents:
            return None
        clauses = ["ts >= ?"]
        params: list[Any] = [through, min(opened for _, _, opened, _ in incidents) - INCIDENT_WINDOW_LEAD_S]
        refs = sorted({pair for *_, pairs in incidents for pair in pairs}, key=repr)
        for domain, key in refs:
            clauses.append("(domain = ? AND key = ?)")
            params += [domain, key]
        row = conn.execute(f"SELECT id, ts, domain, key FROM journal WHERE id <= ? AND ({' OR '.join(clauses)}) "
                           "ORDER BY id LIMIT 1", params).fetchone()
        if row is None:
            return None
        row_id, ts, domain, key = int(row[0]), float(row[1]), row[2], row[3]
        for incident, title, opened, pairs in incidents:  # the oldest incident that keeps it
            if (domain, key) in pairs:
                return RetentionHold(incident, title, opened, row_id, f"{domain}/{key}")
            if ts >= opened - INCIDENT_WINDOW_LEAD_S:
                return RetentionHold(incident, title, opened, row_id, None)
        return None  # pragma: no cover - the query matched one of them
