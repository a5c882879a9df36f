"""The journal: every Event, appended as hash chains (journal_hash.py), one per node, and
the reads over it.

Each node's rows chain onto that node's previous row (schema 13; the rows from before it keep
the one global chain they were written in), while ids stay one sequence over all nodes. The
tips are cached per process (`_tips`, with the next id) and checked inside each write
transaction: any append by any process takes the next id, so a stale cache shows as the
insert's id conflict, and appends from several processes never fork a chain."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

from ..domains import Domain
from ..events import Event
from ..journal_hash import GENESIS, node_row_hash
from .backend import Backend, Connection
from .codec import _dom, _event_from_row, _event_params, _link, _loads
from .records import (
    ANCHOR_META,
    CHAIN_COLUMNS,
    HEAD_META,
    IDS_META,
    NODE_ANCHOR_META,
    NODE_CHAINS_META,
    NODE_HEAD_META,
    SEALED_META,
    ChainLink,
    ChainState,
)
from .scope import NodeScope

_UPSERT_META = ("INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value")  # both dialects say it so


def _span(prefix: str) -> tuple[str, str]:
    """The meta keys `prefix` + a node's name lie between these two (exclusive)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _by_node(rows: Iterable[Any], prefix: str) -> dict[str, ChainLink]:
    """The links among meta `rows` (key, value) kept under `prefix` + a node's name, by node."""
    out = {}
    for key, value in rows:
        link = _link(_loads(value, None)) if str(key).startswith(prefix) else None
        if link is not None:
            out[str(key)[len(prefix):]] = link
    return out


def _prefixed(conn: Connection, prefix: str) -> dict[str, ChainLink]:
    return _by_node(conn.execute("SELECT key, value FROM meta WHERE key > ? AND key < ?", _span(prefix)), prefix)


def _global_tip(conn: Connection) -> tuple[ChainLink, int]:
    """The last row of the one global chain (or its anchor) and the highest id ever given out
    (the rows', any published head's, the one migration 7 kept), read in the caller's
    transaction."""
    row = conn.execute("SELECT id, hash FROM journal WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    given = {str(k): _loads(v, None) for k, v in conn.execute(
        "SELECT key, value FROM meta WHERE key IN (?, ?, ?)", (ANCHOR_META, HEAD_META, IDS_META))}
    last = ChainLink(int(row[0]), str(row[1])) if row is not None else (
        _link(given.get(ANCHOR_META)) or ChainLink(0, GENESIS))
    top = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
    heads = [link.id for link in (_link(given.get(HEAD_META)), *_prefixed(conn, NODE_HEAD_META).values()) if link]
    floor = given.get(IDS_META)
    return last, max(last.id, int(top or 0), *heads, floor if isinstance(floor, int) else 0)


def start_node_chains(conn: Connection) -> None:
    """Migration 13 (both backends): the rows appended from now on chain per node, each
    node's first onto the global chain's end, so what was written before stays covered."""
    last, used = _global_tip(conn)
    conn.execute(_UPSERT_META, (NODE_CHAINS_META, json.dumps({"id": used, "hash": last.hash})))


class JournalRepo:
    """The journal table and the chains' meta rows (anchors, sealed-through, heads)."""

    def __init__(self, db: Backend, scope: NodeScope) -> None:
        self.db, self.scope = db, scope
        # Each node's chain tip (its hash) as last seen (append_many), and the id the next row gets.
        self._tips: dict[str, str] | None = None
        self._next_id = 0
        self._start_id = 0  # the rows past it chain per node (NODE_CHAINS_META), as last read
        self._shared = not db.holds_one_node
        self.last_published_head: ChainLink | None = None  # what this process published last
        db.on_rollback(self._forget_tip)

    def _forget_tip(self) -> None:
        self._tips = None  # they may name rows that were just rolled back

    _ROW_COLUMNS = (*CHAIN_COLUMNS.split(", "), "prev_hash", "hash", "node")

    def append(self, event: Event) -> Event:
        """Store one event; sets and returns it with `event.id`."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events in one transaction, in order; each gets its `id` and is chained to
        the one before it of its node (journal_hash.py). The tips are checked inside the write
        transaction, so appends from several processes never fork a chain."""
        batch = list(events)
        if not batch:
            return batch
        params = [_event_params(e) for e in batch]
        nodes = [e.node or self.scope.node for e in batch]

        def run(conn: Connection) -> int:
            cached = self._tips
            if cached is None:
                tips, next_id = self._chain_tips(conn, nodes)
            elif self._shared:
                # A fleet store: every other host's append makes a cached tip stale, so it is
                # checked here in one query per node, not found out by a failed insert.
                tips, next_id = self._fresh_tips(conn, nodes, cached)
                cached = None
            else:
                missing = [n for n in nodes if n not in cached]
                tips, next_id = ({**cached, **self._node_tips(conn, missing)} if missing else cached), self._next_id
            self._tips = None  # until every row below is in: a failure half way reads the ends again
            rows, after = self._chained(tips, next_id, params, nodes)
            try:
                # Tips read in this transaction cannot be stale (the write lock is held); cached
                # ones can, and on PostgreSQL a failed INSERT would abort the transaction.
                with self.db.dialect.savepoint(conn) if cached is not None else contextlib.nullcontext():
                    self.db.dialect.insert_rows(conn, "journal", self._ROW_COLUMNS, rows)
            except self.db.dialect.integrity_errors:
                # The next id is taken: another connection appended since this one last did.
                # Rows of this call that went in before the conflict (SQLite keeps them; the
                # savepoint undid them on PostgreSQL) go, and the chains are continued from
                # their real ends.
                conn.executemany("DELETE FROM journal WHERE id = ? AND hash = ?", [(r[0], r[-2]) for r in rows])
                tips, next_id = self._chain_tips(conn, nodes)
                rows, after = self._chained(tips, next_id, params, nodes)
                self.db.dialect.insert_rows(conn, "journal", self._ROW_COLUMNS, rows)
            self._tips, self._next_id = after, next_id + len(rows)
            self.db.notify(conn, "journal", str(rows[-1][0]))
            return next_id

        first = self.db.write(run)
        for offset, (event, node) in enumerate(zip(batch, nodes, strict=True)):
            event.id, event.node = first + offset, node
        return batch

    @staticmethod
    def _chained(tips: dict[str, str], next_id: int, params: list[tuple[Any, ...]],
                 nodes: list[str]) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
        """The rows to insert from `next_id` on, with explicit ids, each hashed onto its node's
        tip (id, columns, prev_hash, hash, node), and the tips they make."""
        tips = dict(tips)
        rows = []
        for row_id, (p, node) in enumerate(zip(params, nodes, strict=True), start=next_id):
            prev = tips[node]
            digest = tips[node] = node_row_hash(prev, row_id, p, node)
            rows.append((row_id, *p, prev, digest, node))
        return rows, tips

    def _fresh_tips(self, conn: Connection, nodes: list[str], cached: dict[str, str]) -> tuple[dict[str, str], int]:
        """The tips of `nodes` and the next id, read in the write transaction past what this
        process last saw (a row deleted at the end since keeps its id given out)."""
        tips, next_id = dict(cached), self._next_id
        for node in dict.fromkeys(nodes):
            top, digest = conn.execute(
                "SELECT (SELECT MAX(id) FROM journal), (SELECT hash FROM journal WHERE node = ? AND id > ? AND hash "
                "IS NOT NULL ORDER BY id DESC LIMIT 1)", (node, self._start_id)).fetchone()
            next_id = max(next_id, int(top or 0) + 1)
            if digest is not None:
                tips[node] = str(digest)
            elif node not in tips:
                tips.update(self._node_tips(conn, [node]))
        return tips, next_id

    def _chain_tips(self, conn: Connection, nodes: Iterable[str]) -> tuple[dict[str, str], int]:
        """What the next rows of `nodes` chain to, read from the store, and the next id past
        every id ever given out (the rows', the anchor's, any published head's, the one
        migration 7 kept: so rows deleted at the end leave a gap that verification names);
        call inside a write transaction (which is what keeps two processes from chaining to
        the same row: the second waits for the write lock and then sees the first one's row).

        append_many reads them only when it holds no tips of its own or they went stale (every
        other process's append makes them so: three queries, as few as it takes); a check on
        every append (`PRAGMA data_version`, a trigger) cost more than the hash itself
        (bench/README.md)."""
        meta = self._chain_meta(conn)
        top = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
        floor = _loads(meta.get(IDS_META), None)
        links = [_link(_loads(meta.get(key), None)) for key in (ANCHOR_META, HEAD_META, NODE_CHAINS_META)]
        heads = _by_node(meta.items(), NODE_HEAD_META)
        used = max(int(top or 0), floor if isinstance(floor, int) else 0,
                   *(link.id for link in (*links, *heads.values()) if link is not None))
        return {node: link.hash for node, link in self._node_links(conn, nodes, meta).items()}, used + 1

    @staticmethod
    def _chain_meta(conn: Connection) -> dict[str, Any]:
        """The meta rows the chains keep (key -> raw value), in one query."""
        return {str(k): v for k, v in conn.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?) OR (key > ? AND key < ?) OR (key > ? AND key < ?)",
            (ANCHOR_META, HEAD_META, IDS_META, NODE_CHAINS_META, *_span(NODE_ANCHOR_META), *_span(NODE_HEAD_META)))}

    def _node_tips(self, conn: Connection, nodes: Iterable[str]) -> dict[str, str]:
        return {node: link.hash for node, link in self._node_links(conn, nodes).items()}

    def _node_links(self, conn: Connection, nodes: Iterable[str],
                    meta: dict[str, Any] | None = None) -> dict[str, ChainLink]:
        """Each node's last row past the per-node start, else its anchor (its last pruned
        row), else the start itself."""
        wanted = sorted(set(nodes))
        if not wanted:
            return {}
        meta = self._chain_meta(conn) if meta is None else meta
        start = _link(_loads(meta.get(NODE_CHAINS_META), None)) or ChainLink(0, GENESIS)
        self._start_id = start.id
        anchors = _by_node(meta.items(), NODE_ANCHOR_META)
        out = {}
        for node in wanted:
            row = conn.execute("SELECT id, hash FROM journal WHERE node = ? AND id > ? AND hash IS NOT NULL "
                               "ORDER BY id DESC LIMIT 1", (node, start.id)).fetchone()
            out[node] = ChainLink(int(row[0]), str(row[1])) if row is not None else anchors.get(node, start)
        return out

    @staticmethod
    def _node_start(conn: Connection) -> ChainLink:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (NODE_CHAINS_META,)).fetchone()
        return _link(_loads(row[0] if row else None, None)) or ChainLink(0, GENESIS)

    @classmethod
    def _chain_tip_below(cls, conn: Connection, through: int) -> str:
        """The hash of the last chained row at or below `through` (else the anchor's)."""
        row = conn.execute("SELECT hash FROM journal WHERE id <= ? AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
                           (through,)).fetchone()
        return str(row[0]) if row is not None else cls._anchor(conn).hash

    def _anchor_nodes(self, conn: Connection, through: int) -> None:
        """Before rows up to `through` are pruned: each node whose per-node rows go gets its
        last pruned row as its anchor, what its first row left is checked against."""
        start = self._node_start(conn)
        for node, row_id, digest in conn.execute(
                "SELECT j.node, j.id, j.hash FROM journal j JOIN (SELECT node, MAX(id) AS top FROM journal "
                "WHERE id <= ? AND id > ? AND hash IS NOT NULL GROUP BY node) t ON j.id = t.top",
                (through, start.id)).fetchall():
            conn.execute(_UPSERT_META, (NODE_ANCHOR_META + str(node or ""),
                                        json.dumps({"id": int(row_id), "hash": str(digest)})))

    @staticmethod
    def _anchor(conn: Connection) -> ChainLink:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (ANCHOR_META,)).fetchone()
        return _link(_loads(row[0] if row else None, None)) or ChainLink(0, GENESIS)

    def _publish_head(self, conn: Connection, at: float) -> None:
        """Record this node's chain head in meta (inside the caller's write transaction) when
        it moved: what `journal verify` checks the node's rows still reach."""
        node = self.scope.node
        tip = self._node_links(conn, [node])[node]
        head = ChainLink(tip.id, tip.hash, at)
        published = self.last_published_head
        if published is not None and (published.id, published.hash) == (head.id, head.hash):
            return
        conn.execute(_UPSERT_META, (NODE_HEAD_META + node, json.dumps(head.to_dict())))
        self.last_published_head = head

    def chain_state(self) -> ChainState:
        raw = [(str(r[0]), r[1]) for r in self.db.read(
            "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?) OR (key > ? AND key < ?) OR (key > ? AND key < ?)",
            (ANCHOR_META, SEALED_META, HEAD_META, NODE_CHAINS_META, *_span(NODE_ANCHOR_META),
             *_span(NODE_HEAD_META)))]
        rows = {key: _loads(value, None) for key, value in raw}
        sealed = rows.get(SEALED_META)
        return ChainState(_link(rows.get(ANCHOR_META)) or ChainLink(0, GENESIS),
                          sealed if isinstance(sealed, int) else 0, _link(rows.get(HEAD_META)),
                          _link(rows.get(NODE_CHAINS_META)) or ChainLink(0, GENESIS),
                          _by_node(raw, NODE_ANCHOR_META), _by_node(raw, NODE_HEAD_META))

    def published_head(self) -> ChainLink | None:
        """The journal head this node's host last published (in its heartbeat), with when;
        from before the chains went per node, the one head there was."""
        rows = self.db.read("SELECT key, value FROM meta WHERE key IN (?, ?)",
                            (NODE_HEAD_META + self.scope.node, HEAD_META))
        found = {str(k): _link(_loads(v, None)) for k, v in rows}
        return found.get(NODE_HEAD_META + self.scope.node) or found.get(HEAD_META)

    def chain_rows(self, after_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` rows after `after_id` in id order, as (id .. data, prev_hash, hash, node)."""
        rows = self.db.read(f"SELECT {CHAIN_COLUMNS}, prev_hash, hash, node FROM journal WHERE id > ? "
                            "ORDER BY id LIMIT ?",
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
