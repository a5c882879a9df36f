"""The journal's hash chain holds per node (issue 18): each node's rows chain onto that node's
previous row and the node is covered by the hash, on both backends (the `store_url` fixture);
a store made before the chains went per node is migrated and still verifies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oneiric_core.events import Event
from oneiric_core.journal_chain import verify
from oneiric_core.journal_hash import GENESIS, row_hash
from oneiric_core.store import StateStore
from oneiric_core.store.records import CHAIN_COLUMNS, NODE_CHAINS_META


def ev(message: str) -> Event:
    return Event("config-changed", message)


def raw(store: StateStore, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A write around the journal's append (what tampering is), in the store's own transaction."""
    store.backend.write(lambda conn: conn.execute(sql, params))


def rows_of(store: StateStore) -> list[tuple[Any, ...]]:
    """(id, prev_hash, hash, node) of every row, in id order."""
    return [(r[0], r[-3], r[-2], r[-1]) for r in store.chain_rows(-1, 10_000)]


def two_nodes(path: Path, url: str | None) -> tuple[StateStore, StateStore]:
    return StateStore(path, url=url, node="web-1"), StateStore(path, url=url, node="web-2")


def test_two_nodes_appending_interleaved_each_chain_onto_their_own_rows(tmp_path: Path,
                                                                         store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(12):
            (a if i % 3 else b).append(ev(f"row {i}"))
        a.append_many([ev("a batch"), ev("of two")])
        verdict = verify(b)
        assert verdict.intact and verdict.events == 14, verdict.sentence()
        assert set(verdict.nodes) == {"web-1", "web-2"}
        assert "over 2 nodes' chains" in verdict.sentence()
        rows = rows_of(a)
        assert [r[0] for r in rows] == list(range(1, 15))  # one sequence of ids over both nodes
        for node in ("web-1", "web-2"):
            mine = [r for r in rows if r[3] == node]
            assert mine[0][1] == GENESIS  # each node's first row chains onto the (empty) start
            # and then onto its own rows, whatever the other node wrote between
            assert all(later[1] == earlier[2] for earlier, later in zip(mine, mine[1:], strict=False))
    finally:
        a.close()
        b.close()


def test_a_row_moved_to_another_node_is_named_with_both_nodes(tmp_path: Path, store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(6):
            (a if i % 2 else b).append(ev(f"row {i}"))  # web-2: 1, 3, 5; web-1: 2, 4, 6
        raw(a, "UPDATE journal SET node = ? WHERE id = ?", ("web-2", 4))
        verdict = verify(a)
        problem = verdict.problem
        assert problem is not None and (problem.kind, problem.row_id, problem.node) == ("moved", 4, "web-1")
        assert verdict.sentence() == ("journal tampered on node web-1: row #4 was moved from node web-1 to node "
                                      "web-2: its content hashes right only as node web-1's")
    finally:
        a.close()
        b.close()


def test_an_edited_row_is_named_with_its_node(tmp_path: Path, store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(6):
            (a if i % 2 else b).append(ev(f"row {i}"))
        raw(b, "UPDATE journal SET message = 'nothing happened' WHERE id = 5")
        assert verify(a).sentence() == ("journal tampered on node web-2: row #5 was edited: its content no longer "
                                        "matches its hash")
    finally:
        a.close()
        b.close()


def test_a_row_of_one_node_deleted_in_the_middle_is_named(tmp_path: Path, store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(6):
            (a if i % 2 else b).append(ev(f"row {i}"))
        raw(a, "DELETE FROM journal WHERE id = 3")
        problem = verify(a).problem
        assert problem is not None and (problem.kind, problem.row_id) == ("deleted", 3)
    finally:
        a.close()
        b.close()


def test_a_node_truncated_past_the_head_its_host_published_is_named(tmp_path: Path,
                                                                     store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(6):
            (a if i % 2 else b).append(ev(f"row {i}"))
        a.acquire_lease(1, "box")
        a.heartbeat(1, "box")  # web-1 publishes its head: row 6
        head = a.published_head()
        assert head is not None and head.id == 6
        b.append(ev("web-2 goes on"))
        raw(a, "DELETE FROM journal WHERE id = 6")  # web-1's newest row; web-2's row 7 hides the gap's end
        verdict = verify(b)  # the ids jump; whose row went, nothing left says
        assert verdict.problem is not None and (verdict.problem.kind, verdict.problem.row_id) == ("deleted", 6)
        assert verdict.sentence().startswith("journal tampered: row #6 was deleted: the ids jump from #5 to #7")
        raw(a, "DELETE FROM journal WHERE id = 7")  # now nothing is after it: the head alone tells
        verdict = verify(b)
        assert verdict.problem is not None and verdict.problem.kind == "truncated", verdict.sentence()
        assert verdict.sentence().startswith("journal tampered on node web-1: the journal was truncated: node "
                                             "web-1's rows end at #4, but its host published head #6")
    finally:
        a.close()
        b.close()


def test_pruning_anchors_each_nodes_chain(tmp_path: Path, store_url: str | None) -> None:
    a, b = two_nodes(tmp_path / "state.sqlite", store_url)
    try:
        for i in range(20):
            (a if i % 3 else b).append(Event("config-changed", f"row {i}", ts=1000.0 + i))
        assert a.prune_journal(max_age_s=None, max_rows=7, now=2000.0) == 13
        state = a.chain_state()
        assert set(state.node_anchors) == {"web-1", "web-2"} and state.anchor.id == 13
        verdict = verify(b)
        assert verdict.intact and verdict.events == 7, verdict.sentence()
    finally:
        a.close()
        b.close()


def test_a_store_from_before_the_per_node_chains_is_migrated_and_verifies(tmp_path: Path,
                                                                          store_url: str | None) -> None:
    """X
    starts each node's chain from its end; the old rows still verify with the old formula."""
    path = tmp_path / "state.sqlite"
    with StateStore(path, url=store_url, node="web-1") as store:
        old = [("web-1" if i % 2 else "web-2", 1000.0 + i) for i in range(1, 7)]
        prev, rows = GENESIS, []
        for row_id, (node, ts) in enumerate(old, start=1):
            columns = (ts, "config-changed", "info", None, None, None, None, None, None, f"old {row_id}", "{}")
            digest = row_hash(prev, row_id, columns)
            rows.append((row_id, *columns, prev, digest, node))
            prev = digest
        marks = ", ".join("?" * (len(rows[0])))
        version = ("PRAGMA user_version = 12" if store_url is None else "UPDATE oneiric_schema SET version = 12")

        def as_schema_12(conn: Any) -> None:
            conn.executemany(f"INSERT INTO journal ({CHAIN_COLUMNS}, prev_hash, hash, node) VALUES ({marks})", rows)
            conn.execute("DELETE FROM meta WHERE key = ?", (NODE_CHAINS_META,))
            conn.execute(version)

        store.backend.write(as_schema_12)
    a, b = two_nodes(path, store_url)  # opening migrates it
    try:
        assert a.schema_version == 13
        start = a.chain_state().node_start
        assert (start.id, start.hash) == (6, prev)
        for i in range(4):
            (a if i % 2 else b).append(ev(f"new {i}"))
        verdict = verify(a)
        assert verdict.intact and verdict.events == 10, verdict.sentence()
        new = [r for r in rows_of(a) if r[0] > 6]
        assert [r[1] for r in new[:2]] == [prev, prev]  # each node's first new row chains to the old end
        raw(a, "UPDATE journal SET message = 'rewritten history' WHERE id = 3")
        problem = verify(b).problem
        assert problem is not None and (problem.kind, problem.row_id) == ("edited", 3)
    finally:
        a.close()
        b.close()
