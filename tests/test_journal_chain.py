"""The journal's hash chain on real SQLite files: appends chain, `journal verify` (the CLI in a
subprocess) names the first edited, deleted, inserted, reordered or truncated row, pruning
keeps an anchor, a real host publishes the head, and two processes appending at once keep
one chain. Tampering is done the way an intruder would: plain SQL on the file."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneiric_core.events import Event, Severity
from oneiric_core.journal_chain import verify
from oneiric_core.journal_hash import FORMAT, GENESIS, NODE_FORMAT, canonical, node_row_hash, row_hash
from oneiric_core.store import MIGRATIONS, StateStore, StoreError

REPO = Path(__file__).resolve().parents[1]


def ev(message: str, **kw) -> Event:
    return Event("config-changed", message, **kw)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def db(state: Path) -> Path:
    return state / "state.sqlite"


def store_with(db: Path, count: int) -> None:
    with StateStore(db) as store:
        store.append_many([ev(f"event {i}", ts=1000.0 + i) for i in range(count)])


def tamper(db: Path, *statements: str) -> None:
    raw = sqlite3.connect(db)
    try:
        for sql in statements:
            raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


def verdict(db: Path):
    with StateStore(db) as store:
        return verify(store)


def node_of(db: Path) -> str:
    """The node this machine's store writes as (the hostname unless told otherwise)."""
    with StateStore(db) as store:
        return store.node


def verify_cli(run_cli, state: Path, *extra: str):
    res = run_cli("journal", "verify", *extra, state_dir=state)
    assert "Traceback" not in res.stdout + res.stderr, str(res)
    return res


# -- the encoding ---------------------------------------------------------------------------------


def documented_bytes(prev: str, row_id: int, ts: float, kind: str, severity: str, domain, key, provider, actor,
                     outcome, duration, message: str, data: str) -> bytes:
    """The bytes a row's hash covers, written from docs/journal.md's description (not from
    journal_hash.py): the format's name, id/ts/duration packed, then the texts joined by 0xFF
    with 0xFE for a NULL."""
    def text(value):
        return b"\xfe" if value is None else value.encode("utf-8")
    numbers = struct.pack("<qdd", row_id, ts, float("nan") if duration is None else duration)
    return FORMAT.encode() + numbers + b"".join(
        b"\xff" + text(v) for v in (prev, kind, severity, domain, key, provider, actor, outcome, message, data))


def documented_node_bytes(node: str, prev: str, *columns) -> bytes:
    """Format 2 (a chain per node): format 1's bytes under its own name, then 0xFF and the node."""
    return NODE_FORMAT.encode() + documented_bytes(prev, *columns)[len(FORMAT):] + b"\xff" + node.encode("utf-8")


def test_a_rows_hash_is_sha256_of_the_documented_bytes(db: Path) -> None:
    with StateStore(db) as store:
        first = store.append(Event("swap-complete", "adapter/cache now memory-large", Severity.INFO,
                                   key="cache", provider="memory-large", actor="ops", outcome="complete",
                                   duration_ms=7, data={"from": "memory", "ms": 1.5}, ts=1700000000.25))
        second = store.append(ev("naïve \u2028 text"))
    raw = sqlite3.connect(db)
    rows = raw.execute("SELECT id, ts, kind, severity, domain, key, provider, actor, outcome, duration_ms, "
                       "message, data, prev_hash, hash, node FROM journal ORDER BY id").fetchall()
    raw.close()
    prev = GENESIS
    for row in rows:
        *columns, prev_hash, digest, node = row
        assert prev_hash == prev and node == first.node
        assert digest == hashlib.sha256(documented_node_bytes(node, prev, *columns)).hexdigest()
        prev = digest
    assert [r[0] for r in rows] == [first.id, second.id] == [1, 2]
    assert rows[0][9] == 7.0  # the int duration is stored (and hashed) as the float it reads back as
    assert rows[1][9] is None  # and a row without one carries the NULL mark


_TEXT = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8))
_ROW = st.tuples(st.integers(-(1 << 63), (1 << 63) - 1),
                 st.floats(allow_nan=False), _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT,
                 st.one_of(st.none(), st.floats(allow_nan=False)), _TEXT, _TEXT, _TEXT)


def _columns(row: tuple) -> tuple:
    row_id, ts, prev, kind, severity, domain, key, provider, actor, duration, outcome, message, data = row
    return prev or "", row_id, (ts, kind or "", severity or "", domain, key, provider, actor, outcome, duration,
                                message or "", data or "")


def _identity(prev: str, row_id: int, cols: tuple) -> tuple:
    """What tells two rows apart: the texts (None apart from ""), the id, the floats as doubles."""
    ts, duration = cols[0], cols[8]
    return prev, row_id, struct.pack("<dd", ts, math.nan if duration is None else duration), cols[1:8], cols[9:]


@settings(max_examples=300, deadline=None)
@given(_ROW, st.one_of(_ROW, st.just(None)))
def test_the_bytes_are_the_documented_ones_and_tell_any_two_rows_apart(a: tuple, b: tuple | None) -> None:
    """No escaping, yet unambiguous: 0xFF and 0xFE never occur in UTF-8, so text moved across
    a field boundary, or a NULL for an empty text, changes the bytes."""
    prev_a, id_a, cols_a = _columns(a)
    assert FORMAT.encode() + canonical(prev_a, id_a, cols_a) == documented_bytes(prev_a, id_a, *cols_a)
    if b is None:  # a near neighbour: one text member split differently
        texts = list(cols_a[1:8])
        texts[1], texts[2] = (texts[1] or "") + "x", (texts[2] or "")[1:] if texts[2] else "x"
        b_parts = (prev_a, id_a, (cols_a[0], *texts, cols_a[8], *cols_a[9:]))
    else:
        b_parts = _columns(b)
    same_bytes = canonical(prev_a, id_a, cols_a) == canonical(*b_parts)
    assert same_bytes == (_identity(prev_a, id_a, cols_a) == _identity(*b_parts))


def test_text_moved_across_a_field_boundary_changes_the_hash() -> None:
    base = (1.0, "swap-complete", "info", "adapter", "cache", "memory", "ops", "complete", 1.0, "m", "{}")
    moved = (1.0, "swap-complete", "info", "adapter", "cach", "ememory", "ops", "complete", 1.0, "m", "{}")
    nulled = (1.0, "swap-complete", "info", "adapter", "cache", "memory", None, "complete", 1.0, "m", "{}")
    emptied = (1.0, "swap-complete", "info", "adapter", "cache", "memory", "", "complete", 1.0, "m", "{}")
    hashes = {row_hash(GENESIS, 1, cols) for cols in (base, moved, nulled, emptied)}
    assert len(hashes) == 4


def test_a_value_of_a_foreign_type_hashes_and_verifies_as_edited(db: Path) -> None:
    store_with(db, 3)
    tamper(db, "UPDATE journal SET message = CAST('event 1' AS BLOB) WHERE id = 2")  # same text, as a BLOB
    result = verdict(db)
    assert result.problem is not None and (result.problem.kind, result.problem.row_id) == ("edited", 2)
    assert row_hash(GENESIS, 1, (1.0, b"kind", "info", None, None, None, None, None, None, "", "{}"))


def test_non_finite_numbers_are_hashed_and_still_verify(db: Path) -> None:
    with StateStore(db) as store:
        store.append(ev("odd", ts=1.0, duration_ms=math.nan))  # SQLite keeps a NaN REAL as NULL
        store.append(ev("odder", ts=math.inf, duration_ms=math.inf))
        result = verify(store)
    assert result.intact, result.sentence()


# -- appending --------------------------------------------------------------------------------------


def test_append_many_and_batches_chain_and_a_rolled_back_batch_leaves_no_trace(db: Path) -> None:
    with StateStore(db) as store:
        store.append(ev("one"))
        store.append_many([ev(f"many {i}") for i in range(3)])
        with store.batch():
            store.append(ev("in a batch"))
            store.append_many([ev("also in it"), ev("and this")])
        with pytest.raises(RuntimeError), store.batch():
            store.append_many([ev("rolled back 1"), ev("rolled back 2")])
            raise RuntimeError("the swap failed half way")
        with pytest.raises(StoreError), store.batch():
            store.append(ev("rolled back 3"))
            store.append(Event("config-changed", "no timestamp", ts=math.nan))  # NOT NULL ts: the batch fails
        after = store.append(ev("after the rollbacks"))
        result = verify(store)
        messages = [e.message for e in store.journal()]
    assert result.intact, result.sentence()
    assert after.id == 8 and result.events == 8 and (result.first_id, result.last_id) == (1, 8)
    assert not any("rolled back" in m for m in messages)


def test_two_processes_appending_at_once_keep_one_chain(db: Path) -> None:
    StateStore(db).close()
    writer = textwrap.dedent("""
        import sys
        from oneiric_core.events import Event
        from oneiric_core.store import StateStore
        store = StateStore(sys.argv[1])
        for i in range(150):
            if i % 10 == 0:
                store.append_many([Event("config-changed", f"{sys.argv[2]} batch {i}.{j}") for j in range(4)])
            else:
                store.append(Event("config-changed", f"{sys.argv[2]} {i}"))
        store.close()
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(db), name], env=env, stderr=subprocess.PIPE)
             for name in ("host", "cli")]
    with StateStore(db) as mine:  # and this process in between, with a tip it keeps in memory
        for i in range(100):
            mine.append(ev(f"test {i}"))
        for proc in procs:
            assert proc.wait(120) == 0, proc.stderr.read().decode()
        result = verify(mine)
        total = mine.count_journal()
    per_process = 135 + 15 * 4
    assert total == 2 * per_process + 100
    assert result.intact, result.sentence()
    assert (result.first_id, result.last_id, result.events) == (1, total, total)


# -- verify on tampered files (the CLI in a subprocess) ---------------------------------------------


def test_verify_says_intact_with_the_head(run_cli, state: Path, db: Path) -> None:
    store_with(db, 5)
    res = verify_cli(run_cli, state)
    assert res.returncode == 0
    head = verdict(db).head
    assert res.stdout.strip() == f"journal intact: 5 events from #1 to #5, head #5 sha256:{head.hash}"
    data = verify_cli(run_cli, state, "--json").json()
    assert data["intact"] is True and data["problem"] is None
    assert (data["events"], data["first_id"], data["last_id"]) == (5, 1, 5)
    assert data["head"] == {"id": 5, "hash": head.hash} and data["anchor"] == {"id": 0, "hash": GENESIS}


def test_verify_names_an_edited_row(run_cli, state: Path, db: Path) -> None:
    store_with(db, 6)
    tamper(db, "UPDATE journal SET message = 'nothing happened here' WHERE id = 4")
    res = verify_cli(run_cli, state)
    assert res.returncode == 1
    assert res.stdout.strip() == (f"journal tampered on node {node_of(db)}: row #4 was edited: its content no "
                                  "longer matches its hash")
    problem = verify_cli(run_cli, state, "--json").json()["problem"]
    assert (problem["kind"], problem["row_id"]) == ("edited", 4)


def test_verify_names_an_edited_row_whose_hash_was_recomputed(db: Path) -> None:
    store_with(db, 6)
    raw = sqlite3.connect(db)
    row = raw.execute("SELECT id, ts, kind, severity, domain, key, provider, actor, outcome, duration_ms, "
                      "message, data, prev_hash, node FROM journal WHERE id = 3").fetchone()
    columns = list(row[1:12])
    columns[9] = "a quieter story"
    raw.execute("UPDATE journal SET message = ?, hash = ? WHERE id = 3",
                (columns[9], node_row_hash(row[12], 3, columns, row[13])))
    raw.commit()
    raw.close()
    problem = verdict(db).problem
    assert problem is not None and (problem.kind, problem.row_id) == ("edited", 3)
    assert "recomputed" in problem.detail


def test_verify_names_a_deleted_row(run_cli, state: Path, db: Path) -> None:
    store_with(db, 6)
    tamper(db, "DELETE FROM journal WHERE id = 3")
    res = verify_cli(run_cli, state)
    assert res.returncode == 1
    assert res.stdout.strip().startswith(f"journal tampered on node {node_of(db)}: row #3 was deleted")
    problem = verify_cli(run_cli, state, "--json").json()["problem"]
    assert (problem["kind"], problem["row_id"]) == ("deleted", 3)


def test_verify_names_an_inserted_row(run_cli, state: Path, db: Path) -> None:
    store_with(db, 4)
    tamper(db, "INSERT INTO journal (ts, kind, severity, actor, message) "
               "VALUES (2000, 'swap-approved', 'info', 'bob', 'approved by bob')")
    res = verify_cli(run_cli, state)
    assert res.returncode == 1
    assert res.stdout.strip().startswith("journal tampered: row #5 was inserted")
    problem = verify_cli(run_cli, state, "--json").json()["problem"]
    assert (problem["kind"], problem["row_id"]) == ("inserted", 5)


def test_verify_names_a_row_slipped_in_with_a_hash_and_the_rest_renumbered(db: Path) -> None:
    store_with(db, 5)
    raw = sqlite3.connect(db)
    prev, node = raw.execute("SELECT hash, node FROM journal WHERE id = 2").fetchone()
    raw.execute("UPDATE journal SET id = id + 100 WHERE id > 2")
    raw.execute("UPDATE journal SET id = id - 99 WHERE id > 100")
    columns = [1500.0, "swap-approved", "info", None, None, None, "bob", None, None, "approved by bob", "{}"]
    raw.execute("INSERT INTO journal (id, ts, kind, severity, domain, key, provider, actor, outcome, duration_ms, "
                "message, data, prev_hash, hash, node) VALUES (3, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*columns, prev, node_row_hash(prev, 3, columns, node), node))
    raw.commit()
    raw.close()
    problem = verdict(db).problem
    assert problem is not None and (problem.kind, problem.row_id) == ("inserted", 3)


def test_verify_names_a_reordered_pair(db: Path) -> None:
    store_with(db, 6)
    tamper(db, "UPDATE journal SET id = -1 WHERE id = 4", "UPDATE journal SET id = 4 WHERE id = 5",
           "UPDATE journal SET id = 5 WHERE id = -1")
    result = verdict(db)
    assert result.problem is not None and (result.problem.kind, result.problem.row_id) == ("reordered", 4)
    assert result.sentence() == (f"journal tampered on node {node_of(db)}: rows #4 and #5 were reordered: each "
                                 "one's content hashes right only at the other's place")


def test_rows_deleted_at_the_end_then_appended_over_leave_a_gap(db: Path) -> None:
    store_with(db, 6)
    with StateStore(db) as store:
        store.append(ev("the host keeps writing"))  # this connection now holds the tip in memory
        tamper(db, "DELETE FROM journal WHERE id >= 6")
        store.append(ev("and writes again"))
        result = verify(store)
    assert result.problem is not None and (result.problem.kind, result.problem.row_id) == ("deleted", 6)
    assert result.problem.detail.startswith("rows #6 to #7 were deleted")


# -- pruning ----------------------------------------------------------------------------------------


def test_verify_passes_after_pruning(run_cli, state: Path, db: Path) -> None:
    with StateStore(db) as store:
        store.append_many([ev(f"old {i}", ts=1000.0 + i) for i in range(10)])
        store.append_many([ev(f"new {i}", ts=5000.0 + i) for i in range(5)])
        store.append(ev("late but old", ts=1500.0))  # an old ts after young rows stays: only a prefix goes
        assert store.prune_journal(max_age_s=1000, max_rows=None, now=6000.0) == 10
        last_pruned = store.chain_state().anchor
        assert store.prune_journal(max_age_s=None, max_rows=4) == 2
        assert store.append(ev("after the prune")).id == 17
    res = verify_cli(run_cli, state)
    assert res.returncode == 0, str(res)
    assert res.stdout.startswith("journal intact: 5 events from #13 to #17")
    data = verify_cli(run_cli, state, "--json").json()
    assert data["anchor"]["id"] == 12 and last_pruned.id == 10
    # the anchor is what the first row left must chain to: an edit of it is caught too
    tamper(db, "UPDATE journal SET prev_hash = '" + "f" * 64 + "' WHERE id = 13")
    assert verify_cli(run_cli, state).returncode == 1


def test_pruning_everything_keeps_the_chain_going(db: Path) -> None:
    store_with(db, 5)
    with StateStore(db) as store:
        assert store.prune_journal(max_age_s=None, max_rows=0) == 5
        empty = verify(store)
        assert empty.intact and empty.events == 0 and empty.head.id == 5
        assert store.append(ev("first after")).id == 6
        assert verify(store).intact


def test_a_row_below_the_anchor_was_inserted(db: Path) -> None:
    store_with(db, 6)
    with StateStore(db) as store:
        store.prune_journal(max_age_s=None, max_rows=3)
    tamper(db, "INSERT INTO journal (id, ts, kind, severity, message, prev_hash, hash) "
               f"VALUES (2, 1.0, 'host-started', 'info', 'backdated', '{GENESIS}', '{'a' * 64}')")
    problem = verdict(db).problem
    assert problem is not None and (problem.kind, problem.row_id) == ("inserted", 2)


# -- rows written before the chain existed ------------------------------------------------------------


def test_rows_from_before_the_chain_are_chained_when_the_store_is_upgraded(db: Path) -> None:
    db.parent.mkdir(parents=True)
    raw = sqlite3.connect(db)
    for statements in MIGRATIONS[:4]:
        for sql in statements:
            raw.execute(sql)
    raw.execute("PRAGMA user_version = 4")
    raw.executemany("INSERT INTO journal (id, ts, kind, severity, message, data) VALUES (?, ?, ?, 'info', ?, '{}')",
                    [(i, 1000.0 + i, "config-changed", f"before {i}") for i in (3, 4, 7, 8)])  # an old prune's gap
    raw.commit()
    raw.close()
    with StateStore(db) as store:
        store.append(ev("after the upgrade"))
        result = verify(store)
    assert result.intact, result.sentence()
    assert (result.events, result.first_id, result.last_id) == (5, 3, 9)
    tamper(db, "UPDATE journal SET message = 'rewritten history' WHERE id = 4")
    problem = verdict(db).problem
    assert problem is not None and (problem.kind, problem.row_id) == ("edited", 4)


def test_schema_7_drops_autoincrement_and_never_gives_an_id_out_twice(db: Path) -> None:
    db.parent.mkdir(parents=True)
    raw = sqlite3.connect(db)  # a store as a program of schema 4 left it, run raw
    for statements in MIGRATIONS[:4]:
        for sql in statements:
            raw.execute(sql)
    raw.execute("PRAGMA user_version = 4")
    raw.executemany("INSERT INTO journal (ts, kind, severity, message, data) VALUES (?, 'config-changed', 'info', "
                    "?, '{}')", [(1000.0 + i, f"old {i}") for i in range(6)])
    raw.execute("DELETE FROM journal WHERE id >= 5")  # its AUTOINCREMENT counter stays at 6
    raw.commit()
    raw.close()
    with StateStore(db) as store:
        sql = store._read("SELECT sql FROM sqlite_master WHERE name = 'journal'")[0][0]
        assert "AUTOINCREMENT" not in sql.upper() and store.schema_version == len(MIGRATIONS)
        assert store.append(ev("after the upgrade")).id == 7  # never 5 or 6 again
        assert store.append(ev("and after that")).id == 8
    with StateStore(db) as store:  # a new process reads the same end
        assert store.append(ev("a new process")).id == 9
        problem = verify(store).problem
    # rows 5 and 6 went before the chain could see them; the gap is still named
    assert problem is not None and (problem.kind, problem.row_id) == ("deleted", 5)


def test_an_append_after_another_connection_appended_continues_its_chain(db: Path) -> None:
    with StateStore(db) as first, StateStore(db) as second:
        first.append(ev("first holds the tip"))
        second.append(ev("second appends behind first's back"))
        second.append(ev("twice"))
        assert first.append(ev("first's id was taken: it reads the end again")).id == 4
        assert second.append(ev("and second's")).id == 5
        result = verify(first)
    assert result.intact and result.events == 5, result.sentence()


# -- the host publishes its head ---------------------------------------------------------------------


def _host(settings: Path, state: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEIRIC_", "NOTIFY_", "WATCHDOG_"))}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                                 "--state-dir", str(state), "run"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_verify_catches_a_truncation_past_the_head_the_host_published(run_cli, demo_settings: Path,
                                                                      state: Path, db: Path,
                                                                      tmp_path: Path) -> None:
    host = _host(demo_settings, state, tmp_path / "host.log")
    try:
        def published():
            res = run_cli("status", "--json", state_dir=state)
            info = res.json()["host"] if res.returncode == 0 else None
            return info and info["alive"] and info["head"]

        head = _wait(published, "the host to publish its journal head")
        assert set(head) == {"id", "hash", "at"} and len(head["hash"]) == 64
        assert run_cli("pause", "--key", "cache", "--note", "maintenance", state_dir=state).returncode == 0
        os.kill(host.pid, signal.SIGTERM)
        assert host.wait(60) == 0, (tmp_path / "host.log").read_text()
    finally:
        if host.poll() is None:
            host.kill()
    with StateStore(db) as store:
        final = store.published_head()
        last = store.last_journal_id()
    assert final is not None and final.id == last  # released with the host-stopped event covered
    assert verify_cli(run_cli, state).returncode == 0
    tamper(db, f"DELETE FROM journal WHERE id > {final.id - 3}")  # the newest rows, the pause among them
    res = verify_cli(run_cli, state)
    assert res.returncode == 1
    node = node_of(db)
    assert res.stdout.strip().startswith(f"journal tampered on node {node}: the journal was truncated: node {node}'s "
                                         f"rows end at #{final.id - 3}, but its host published head #{final.id} "
                                         f"sha256:{final.hash}")
    problem = verify_cli(run_cli, state, "--json").json()["problem"]
    assert (problem["kind"], problem["row_id"]) == ("truncated", final.id - 2)


def test_verify_catches_a_rewrite_up_to_the_published_head(db: Path) -> None:
    store_with(db, 4)
    with StateStore(db) as store:
        store.acquire_lease(1, "box")
        store.heartbeat(1, "box")
        head = store.published_head()
    assert head is not None and head.id == 4
    raw = sqlite3.connect(db)  # rewrite row 4 and recompute its hash: a self-consistent chain
    prev, node, *columns = raw.execute("SELECT prev_hash, node, ts, kind, severity, domain, key, provider, actor, "
                                       "outcome, duration_ms, message, data FROM journal WHERE id = 4").fetchone()
    columns[9] = "nothing to see"
    raw.execute("UPDATE journal SET message = ?, hash = ? WHERE id = 4",
                (columns[9], node_row_hash(prev, 4, columns, node)))
    raw.commit()
    raw.close()
    problem = verdict(db).problem
    assert problem is not None and (problem.kind, problem.row_id) == ("rewritten", 4)


async def test_the_host_publishes_its_head_as_a_telemetry_gauge(tmp_path: Path) -> None:
    from oneiric_core.engine import Engine
    from tests.helpers import demo_copy, until

    engine = Engine(demo_copy(tmp_path), state_dir=tmp_path / "state", actor="tester")
    await engine.start()
    try:
        def gauge():
            points = engine.telemetry.metrics().get("oneiric.journal.head_id", [])
            return points and points[0][1]

        value = await until(gauge, "the journal head gauge")
        published = engine.store.published_head()
        assert published is not None and value == published.id > 0
    finally:
        await engine.stop()
        engine.close()


def test_journal_verify_takes_no_filters(run_cli, state: Path, db: Path) -> None:
    store_with(db, 2)
    res = run_cli("journal", "verify", "--follow", state_dir=state)
    assert res.returncode == 2 and res.stderr.strip() == (
        "oneiric: journal verify checks the whole chain: it takes no filter and no --follow.")
