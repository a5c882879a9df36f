"""The journal: every Event, appended as a hash chain (journal_hash.py), and the reads over it.

The chain's tip is cached per process (`ChainTip`) and checked inside each write transaction,
so appends from several processes queue up on one chain and never fork it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

from ..domains import Domain
from ..events import Event
from ..journal_hash import GENESIS, row_hash
from .backend import Backend, Connection
from .codec import _dom, _event_from_row, _event_params, _link, _loads
from .records import ANCHOR_META, CHAIN_COLUMNS, HEAD_META, IDS_META, SEALED_META, ChainLink, ChainState, ChainTip
from .scope import NodeScope


class JournalRepo:
    """The journal table and the chain's meta rows (anchor, sealed-through, head)."""

    def __init__(self, db: Backend, scope: NodeScope) -> None:
        self.db, self.scope = db, scope
        self._tip: ChainTip | None = None  # the journal's chain tip as last seen (append_many)
        self.last_published_head: ChainLink | None = None  # what this process published last
        db.on_rollback(self._forget_tip)

    def _forget_tip(self) -> None:
        self._tip = None  # it may name rows that were just rolled back

    _ROW_COLUMNS = (*CHAIN_COLUMNS.split(", "), "prev_hash", "hash", "node")

    def append(self, event: Event) -> Event:
        """Store one event; sets and returns it with `event.id`."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events in one transaction, in order; each gets its `id` and is chained to
        the one before it (journal_hash.py). The tip is checked inside the write transaction,
        so appends from several processes queue up on one chain and never fork it."""
        batch = list(events)
        if not batch:
            return batch
        params = [_event_params(e) for e in batch]
        nodes = [e.node or self.scope.node for e in batch]

        def run(conn: Connection) -> int:
            cached = self._tip
            tip = cached or self._chain_tip(conn)
            self._tip = None  # until every row below is in: a failure half way reads the end again
            rows, after = self._chained(tip, params, nodes)
            try:
                # A tip read in this transaction cannot be stale (the write lock is held); a
                # cached one can, and on PostgreSQL a failed INSERT would abort the transaction.
                with self.db.dialect.savepoint(conn) if cached else contextlib.nullcontext():
                    self.db.dialect.insert_rows(conn, "journal", self._ROW_COLUMNS, rows)
            except self.db.dialect.integrity_errors:
                # The next id is taken: another connection appended since this one last did.
                # Rows of this call that went in before the conflict (SQLite keeps them; the
                # savepoint undid them on PostgreSQL) go, and the chain is continued from its
                # real end.
                conn.executemany("DELETE FROM journal WHERE id = ? AND hash = ?", [(r[0], r[-2]) for r in rows])
                tip = self._chain_tip(conn)
                rows, after = self._chained(tip, params, nodes)
                self.db.dialect.insert_rows(conn, "journal", self._ROW_COLUMNS, rows)
            self._tip = after
            self.db.notify(conn, "journal", str(after.id))
            return tip.next_id

        first = self.db.write(run)
        for offset, (event, node) in enumerate(zip(batch, nodes, strict=True)):
            event.id, event.node = first + offset, node
        return batch

    def _chained(self, tip: ChainTip, params: list[tuple[Any, ...]],
                 nodes: list[str]) -> tuple[list[tuple[Any, ...]], ChainTip]:
        """The rows to insert after `tip`, with explicit ids, each hashed onto the one before
        (id, columns, prev_hash, hash, node), and the tip they make."""
        prev, next_id = tip.hash, tip.next_id
        rows = []
        for p, node in zip(params, nodes, strict=True):
            digest = row_hash(prev, next_id, p)
            rows.append((next_id, *p, prev, digest, node))
            prev, next_id = digest, next_id + 1
        return rows, ChainTip(next_id - 1, prev, next_id)

    def _chain_tip(self, conn: Connection) -> ChainTip:
        """What the next row chains to, read from the store; call inside a write transaction
        (which is what keeps two processes from chaining to the same row: the second waits
        for the write lock and then sees the first one's row). The last chained row, or the
        anchor when none is left, and the next id past every id ever given out (the rows',
        the published head's, the one migration 7 kept), so rows deleted at the end leave a
        gap that verification names.

        append_many reads it only when it holds no tip of its own or its tip went stale; a
        check on every append (`PRAGMA data_version`, a trigger) cost more than the hash
        itself (bench/README.md)."""
        row = conn.execute("SELECT id, hash FROM journal WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        last = ChainLink(int(row[0]), str(row[1])) if row is not None else self._anchor(conn)
        top = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
        given = {k: _loads(v, None) for k, v in conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", (HEAD_META, IDS_META))}
        head = _link(given.get(HEAD_META))
        floor = given.get(IDS_META)
        used = max(last.id, int(top or 0), head.id if head else 0, floor if isinstance(floor, int) else 0)
        return ChainTip(last.id, last.hash, used + 1)

    @classmethod
    def _chain_tip_below(cls, conn: Connection, through: int) -> str:
        """The hash of the last chained row at or below `through` (else the anchor's)."""
        row = conn.execute("SELECT hash FROM journal WHERE id <= ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                           (through,)).fetchone()
        return str(row[0]) if row is not None else cls._anchor(conn).hash

    @staticmethod
    def _anchor(conn: Connection) -> ChainLink:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (ANCHOR_META,)).fetchone()
        return _link(_loads(row[0] if row else None, None)) or ChainLink(0, GENESIS)

    def _publish_head(self, conn: Connection, at: float) -> None:
        """Record the chain's head in meta (inside the caller's write transaction) when it
        moved: what `journal verify` checks the journal still reaches."""
        tip = self._chain_tip(conn)
        head = ChainLink(tip.id, tip.hash, at)
        published = self.last_published_head
        if published is not None and (published.id, published.hash) == (head.id, head.hash):
            return
        conn.execute(self.db.dialect.upsert("meta", ("key", "value"), ("key",)),
                     (HEAD_META, json.dumps(head.to_dict())))
        self.last_published_head = head

    def chain_state(self) -> ChainState:
        rows = {r[0]: _loads(r[1], None) for r in self.db.read(
            "SELECT key, value FROM meta WHERE key IN (?, ?, ?)", (ANCHOR_META, SEALED_META, HEAD_META))}
        sealed = rows.get(SEALED_META)
        return ChainState(_link(rows.get(ANCHOR_META)) or ChainLink(0, GENESIS),
                          sealed if isinstance(sealed, int) else 0, _link(rows.get(HEAD_META)))

    def published_head(self) -> ChainLink | None:
        """The journal head the host last published (in its heartbeat), with when."""
        rows = self.db.read("SELECT value FROM meta WHERE key = ?", (HEAD_META,))
        return _link(_loads(rows[0][0], None)) if rows else None

    def chain_rows(self, after_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` rows after `after_id` in id order, as (id .. data, prev_hash, hash)."""
        rows = self.db.read(f"SELECT {CHAIN_COLUMNS}, prev_hash, hash FROM journal WHERE id > ? ORDER BY id LIMIT ?",
                          (int(after_id), int(limit)))
        return [tuple(r) for r in rows]

    def _filters(
        self,
        *,
        after_id: int | None = None,
        kinds: Iterable[str] | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
        since_ts: float | None = None,
        text: str | None = None,
        node: str | None = None,
    ) -> tuple[str, list[Any]] | None:
        """A WHERE clause and its parameters; None when the filter can match nothing."""
        clauses: list[str] = []
        params: list[Any] = []
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        if kinds is not None:
            wanted = [kinds] if isinstance(kinds, str) else sorted({str(k) for k in kinds})
            if not wanted:
                return None
            clauses.append(f"kind IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if domain is not None:
            clauses.append("domain = ?")
            params.append(_dom(domain))
        if key is not None:
            clauses.append("key = ?")
            params.append(key)
        if since_ts is not None:
            clauses.append("ts >= ?")
            params.append(float(since_ts))
        if node is not None:
            clauses.append("node = ?")
            params.append(node)
        if text:
            contains = self.db.dialect.contains
            clauses.append(f"({' OR '.join(contains(c) for c in ('message', 'kind', 'provider', 'key'))})")
            params.extend([text] * 4)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return where, params

    def journal(
        self,
        *,
        limit: int = 200,
        after_id: int | None = None,
        kinds: Iterable[str] | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
        since_ts: float | None = None,
        text: str | None = None,
        node: str | None = None,
    ) -> list[Event]:
        """The newest `limit` matching events, returned oldest first.

        `kinds=None` means every kind (an empty collection matches nothing); `text` is a
        case-insensitive substring of the message, kind, provider or key; `node` keeps the
        events one node's processes wrote (a fleet store's journal is every node's).
        """
        if limit <= 0:
            return []
        built = self._filters(
            after_id=after_id, kinds=kinds, domain=domain, key=key, since_ts=since_ts, text=text, node=node
        )
        if built is None:
            return []
        where, params = built
        rows = self.db.read(f"SELECT * FROM journal{where} ORDER BY id DESC LIMIT ?", [*params, int(limit)])
        return [_event_from_row(row) for row in reversed(rows)]

    def last_journal_id(self) -> int:
        """The highest stored event id, 0 when the journal is empty."""
        return int(self.db.read("SELECT COALESCE(MAX(id), 0) FROM journal")[0][0])

    def oldest_journal_row(self) -> tuple[int, float] | None:
        """The oldest stored event's id and time, None when the journal is empty."""
        rows = self.db.read("SELECT id, ts FROM journal ORDER BY id LIMIT 1")
        return (int(rows[0][0]), float(rows[0][1])) if rows else None

    def count_journal(
        self,
        *,
        kind: str | None = None,
        since_ts: float | None = None,
        domain: Domain | str | None = None,
        key: str | None = None,
    ) -> int:
        built = self._filters(
            kinds=None if kind is None else [kind], since_ts=since_ts, domain=domain, key=key
        )
        assert built is not None
        where, params = built
        return int(self.db.read(f"SELECT COUNT(*) FROM journal{where}", params)[0][0])
