"""The state store against real SQLite files and a real PostgreSQL (the `store_url` fixture
runs each backend-neutral test on both): journal, activity, snapshots, lease, concurrency,
failures. What only a SQLite file has (WAL, PRAGMAs, file modes, a full disk) is tested on
SQLite alone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from oneiric_core.domains import Domain
from oneiric_core.errors import OneiricError
from oneiric_core.events import Event, Severity
from oneiric_core.store import (
    SCHEMA_VERSION,
    ActivityRecord,
    HealthSnapshot,
    LeaseInfo,
    LifecycleSnapshot,
    StateStore,
    StoreError,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".oneiric" / "state.sqlite"


@pytest.fixture
def store(db_path: Path, store_url: str | None):
    s = StateStore(db_path, url=store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(db_path: Path):
    s = StateStore(db_path)
    yield s
    s.close()


def ev(kind: str = "swap-complete", message: str = "m", **kw) -> Event:
    return Event(kind=kind, message=message, **kw)


# --------------------------------------------------------------------------- opening


def test_creates_parent_dir_wal_and_schema_version(db_path: Path, sqlite_store: StateStore) -> None:
    store = sqlite_store
    assert db_path.parent.is_dir() and db_path.exists()
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 1  # NORMAL
    assert store.pragma("busy_timeout") == 5000
    assert store.schema_version == SCHEMA_VERSION >= 1
    # A separate, plain connection sees the same persistent settings.
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"journal", "activity", "lifecycle", "health", "nodes", "meta"} <= tables
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"journal_ts", "journal_kind", "journal_ref"} <= indexes
    finally:
        raw.close()


def test_custom_busy_timeout(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite", busy_timeout_ms=1234) as s:
        assert s.pragma("busy_timeout") == 1234


def test_newer_schema_is_refused(db_path: Path) -> None:
    StateStore(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="upgrade the program") as info:
        StateStore(db_path)
    assert str(db_path) in str(info.value)


def test_closed_store_raises_store_error(db_path: Path, store_url: str | None) -> None:
    s = StateStore(db_path, url=store_url)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.append(ev())


# --------------------------------------------------------------------------- journal


def test_append_sets_ids_and_round_trips_fields(store: StateStore) -> None:
    e = ev(
        "swap-failed", "Swap of adapter/cache to redis failed.", severity=Severity.ERROR,
        domain=Domain.ADAPTER, key="cache", provider="redis", actor="ops", outcome="failed",
        duration_ms=12.5, data={"reason": "timeout", "n": [1, 2]}, ts=1000.0,
    )
    returned = store.append(e)
    assert returned is e and e.id == 1
    assert store.last_journal_id() == 1
    (back,) = store.journal()
    assert back == e
    assert back.domain is Domain.ADAPTER and back.severity is Severity.ERROR


def test_append_many_is_ordered(store: StateStore) -> None:
    assert store.last_journal_id() == 0
    events = store.append_many([ev(message=f"e{i}") for i in range(5)])
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert store.append_many([]) == []
    assert [e.message for e in store.journal()] == ["e0", "e1", "e2", "e3", "e4"]


def test_journal_newest_limit_returned_oldest_first(store: StateStore) -> None:
    store.append_many([ev(message=f"e{i}", ts=100.0 + i) for i in range(10)])
    got = store.journal(limit=3)
    assert [e.message for e in got] == ["e7", "e8", "e9"]
    assert [e.id for e in got] == [8, 9, 10]
    assert store.journal(limit=0) == []


def test_journal_filters(store: StateStore) -> None:
    store.append_many(
        [
            ev("swap-complete", "Swapped cache", domain=Domain.ADAPTER, key="cache", provider="redis", ts=10.0),
            ev("health-changed", "cache degraded", domain=Domain.ADAPTER, key="cache", provider="memory", ts=20.0),
            ev("swap-failed", "queue failed", domain=Domain.SERVICE, key="queue", provider="Kafka", ts=30.0),
            ev("host-started", "Host started", ts=40.0),
            ev("activity-changed", "Paused ÉMAIL sender", domain=Domain.ACTION, key="email", ts=50.0),
        ]
    )
    kinds = lambda events: [e.kind for e in events]  # noqa: E731
    assert kinds(store.journal(kinds=["swap-complete", "swap-failed"])) == ["swap-complete", "swap-failed"]
    assert kinds(store.journal(kinds={"host-started"})) == ["host-started"]
    assert store.journal(kinds=[]) == []
    assert kinds(store.journal(domain="adapter")) == ["swap-complete", "health-changed"]
    assert kinds(store.journal(domain="adapters")) == ["swap-complete", "health-changed"]
    assert kinds(store.journal(domain=Domain.SERVICE)) == ["swap-failed"]
    assert kinds(store.journal(domain="adapter", key="cache", kinds=["health-changed"])) == ["health-changed"]
    assert kinds(store.journal(key="queue")) == ["swap-failed"]
    assert kinds(store.journal(after_id=3)) == ["host-started", "activity-changed"]
    assert kinds(store.journal(since_ts=30.0)) == ["swap-failed", "host-started", "activity-changed"]
    # text: case-insensitive over message, kind, provider and key
    assert kinds(store.journal(text="CACHE")) == ["swap-complete", "health-changed"]
    assert kinds(store.journal(text="kafka")) == ["swap-failed"]  # provider
    assert kinds(store.journal(text="HOST-")) == ["host-started"]  # kind
    assert kinds(store.journal(text="émail")) == ["activity-changed"]  # non-ASCII case folding
    assert kinds(store.journal(text="que")) == ["swap-failed"]  # key and message
    assert store.journal(text="nothing-like-this") == []
    assert kinds(store.journal(text="100%")) == []  # no LIKE wildcards


def test_count_journal(store: StateStore) -> None:
    store.append_many(
        [
            ev("swap-complete", domain=Domain.ADAPTER, key="cache", ts=10.0),
            ev("swap-complete", domain=Domain.ADAPTER, key="db", ts=20.0),
            ev("swap-failed", domain=Domain.ADAPTER, key="cache", ts=30.0),
        ]
    )
    assert store.count_journal() == 3
    assert store.count_journal(kind="swap-complete") == 2
    assert store.count_journal(since_ts=20.0) == 2
    assert store.count_journal(domain="adapter", key="cache") == 2
    assert store.count_journal(kind="swap-failed", domain=Domain.ADAPTER, key="cache", since_ts=25) == 1


def test_prune_by_age(store: StateStore) -> None:
    store.append_many([ev(message=f"e{i}", ts=1000.0 + i * 10) for i in range(10)])  # ts 1000..1090
    deleted = store.prune_journal(max_age_s=35, max_rows=None, now=1100.0)  # keep ts >= 1065
    assert deleted == 7
    assert [e.message for e in store.journal()] == ["e7", "e8", "e9"]
    assert store.count_journal() == 3


def test_prune_by_rows_then_both(store: StateStore) -> None:
    store.append_many([ev(message=f"e{i}", ts=1000.0 + i) for i in range(10)])
    assert store.prune_journal(max_age_s=None, max_rows=4) == 6
    assert [e.message for e in store.journal()] == ["e6", "e7", "e8", "e9"]
    assert store.prune_journal(max_age_s=None, max_rows=10) == 0
    assert store.prune_journal(max_age_s=None, max_rows=None) == 0
    # age first (drops e6 at ts 1006), then rows (drops e7)
    assert store.prune_journal(max_age_s=2.5, max_rows=2, now=1009.0) == 2
    assert [e.message for e in store.journal()] == ["e8", "e9"]
    assert store.prune_journal(max_age_s=None, max_rows=0) == 2
    assert store.journal() == [] and store.last_journal_id() == 0
    # ids keep growing after a prune (AUTOINCREMENT): a tailing reader never sees an id twice
    assert store.append(ev()).id == 11


def test_survives_reopen(db_path: Path, store_url: str | None) -> None:
    s = StateStore(db_path, url=store_url)
    s.append(ev("host-started", "up", data={"pid": 1}))
    s.set_activity(ActivityRecord("adapter", "cache", "paused", note="maintenance", actor="ops"))
    s.set_meta("settings_digest", {"a": 1})
    s.acquire_lease(42, "box", now=50.0)
    s.close()

    s2 = StateStore(db_path, url=store_url)
    try:
        (e,) = s2.journal()
        assert (e.id, e.kind, e.message, e.data) == (1, "host-started", "up", {"pid": 1})
        act = s2.get_activity("adapter", "cache")
        assert act is not None and (act.state, act.note, act.actor) == ("paused", "maintenance", "ops")
        assert s2.get_meta("settings_digest") == {"a": 1}
        assert s2.current_lease() == LeaseInfo(42, "box", 50.0, 50.0)
        assert s2.schema_version == SCHEMA_VERSION
    finally:
        s2.close()


# --------------------------------------------------------------------------- activity, snapshots, meta


def test_activity_set_get_and_delete_on_active(store: StateStore) -> None:
    assert store.get_activity("adapter", "cache") is None
    store.set_activity(ActivityRecord("adapter", "cache", "paused", note="db migration", actor="ops", updated_at=5.0))
    store.set_activity(ActivityRecord(Domain.SERVICE, "queue", "draining"))
    store.set_activity(ActivityRecord("actions", "email", "drained", actor="cli"))
    assert store.get_activity(Domain.ADAPTER, "cache") == ActivityRecord(
        "adapter", "cache", "paused", "db migration", "ops", 5.0
    )
    q = store.get_activity("service", "queue")
    assert q is not None and q.state == "draining" and q.updated_at > 0
    assert [(a.domain, a.key) for a in store.all_activity()] == [
        ("action", "email"), ("adapter", "cache"), ("service", "queue"),
    ]
    # active with a note is kept (e.g. "resumed after incident"), active with no note deletes
    store.set_activity(ActivityRecord("adapter", "cache", "active", note="resumed"))
    assert store.get_activity("adapter", "cache").state == "active"
    store.set_activity(ActivityRecord("adapter", "cache", "active"))
    assert store.get_activity("adapter", "cache") is None
    assert len(store.all_activity()) == 2
    with pytest.raises(OneiricError, match="not an activity state"):
        store.set_activity(ActivityRecord("adapter", "cache", "sleeping"))


def test_lifecycle_snapshots(store: StateStore) -> None:
    a = LifecycleSnapshot(
        "adapter", "cache", "ready", "redis", "builtin", pending_provider="memory",
        last_error=None, inflight=3, last_swap={"from": "memory", "to": "redis", "ms": 12.0}, updated_at=7.0,
    )
    b = LifecycleSnapshot(Domain.SERVICE, "queue", "failed", None, None, last_error="boom")
    store.put_lifecycle(a)
    store.put_lifecycle(b)
    assert store.get_lifecycle("adapter", "cache") == a
    got_b = store.get_lifecycle("service", "queue")
    assert got_b.domain == "service" and got_b.last_error == "boom" and got_b.last_swap is None
    assert got_b.updated_at > 0
    store.put_lifecycle(LifecycleSnapshot("adapter", "cache", "swapping", "redis", "builtin", updated_at=8.0))
    assert store.get_lifecycle("adapter", "cache").state == "swapping"
    assert [(s.domain, s.key) for s in store.all_lifecycle()] == [("adapter", "cache"), ("service", "queue")]
    store.clear_lifecycle()
    assert store.all_lifecycle() == [] and store.get_lifecycle("adapter", "cache") is None


def test_every_snapshot_reads_its_last_swap_and_a_broken_one_reads_as_none(store: StateStore) -> None:
    """all_lifecycle decodes the last swaps of every row at once; a row whose text is not JSON
    (a damaged store) reads as no last swap, and the others are still read whole."""
    for key in ("a", "b", "c"):
        store.put_lifecycle(LifecycleSnapshot("adapter", key, "ready", "memory", "builtin", last_swap={"to": key}))
    assert [s.last_swap for s in store.all_lifecycle()] == [{"to": "a"}, {"to": "b"}, {"to": "c"}]
    for broken in ("{not json", '{"to": "x"}, {"to": "y"}'):
        store.backend.write(lambda conn, text=broken: conn.execute(
            "UPDATE lifecycle SET last_swap = ? WHERE key = ?", (text, "b")))
        assert [s.last_swap for s in store.all_lifecycle()] == [{"to": "a"}, None, {"to": "c"}], broken


def test_health_snapshots(store: StateStore) -> None:
    h = HealthSnapshot("adapter", "cache", "redis", "degraded", 12.5, "slow", 10.0, 9.0, samples=[1.0, None, 12.5])
    store.put_health(h)
    store.put_health(HealthSnapshot("adapter", "db", "pg", "ok", None, "", 10.0, 1.0))
    assert store.get_health("adapter", "cache") == h
    assert store.get_health("adapter", "db").samples == []
    assert [x.key for x in store.all_health()] == ["cache", "db"]
    store.put_health(HealthSnapshot("adapter", "cache", "memory", "ok", 0.1, "", 11.0, 11.0, [0.1]))
    assert store.get_health("adapter", "cache").provider == "memory"
    assert len(store.all_health()) == 2
    store.clear_health()
    assert store.all_health() == []


def test_meta(store: StateStore) -> None:
    assert store.get_meta("x") is None
    assert store.get_meta("x", 5) == 5
    store.set_meta("x", {"list": [1, 2], "s": "é"})
    assert store.get_meta("x") == {"list": [1, 2], "s": "é"}
    store.set_meta("x", 3)
    assert store.get_meta("x") == 3


# --------------------------------------------------------------------------- lease


def test_lease_lifecycle(store: StateStore) -> None:
    assert store.current_lease() is None
    ok, info = store.acquire_lease(100, "hostA", now=1000.0)
    assert ok and info == LeaseInfo(100, "hostA", 1000.0, 1000.0)

    # a second host is refused and told who holds it
    ok, holder = store.acquire_lease(200, "hostA", now=1001.0)
    assert not ok and holder == LeaseInfo(100, "hostA", 1000.0, 1000.0)
    ok, holder = store.acquire_lease(100, "hostB", now=1001.0)  # same pid, other machine
    assert not ok and holder.hostname == "hostA"

    # re-acquiring our own lease keeps started_at and refreshes the heartbeat
    ok, info = store.acquire_lease(100, "hostA", now=1002.0)
    assert ok and info == LeaseInfo(100, "hostA", 1000.0, 1002.0)

    assert store.heartbeat(100, "hostA", now=1004.0)
    assert store.current_lease().heartbeat_at == 1004.0
    assert not store.heartbeat(200, "hostA", now=1004.0)

    # not stale yet at 1004 + 5.0
    assert store.acquire_lease(200, "hostA", stale_after_s=5.0, now=1009.0)[0] is False
    # stale: the second host takes over, and the first one's heartbeat now fails
    ok, info = store.acquire_lease(200, "hostA", stale_after_s=5.0, now=1009.5)
    assert ok and info == LeaseInfo(200, "hostA", 1009.5, 1009.5)
    assert store.heartbeat(100, "hostA", now=1010.0) is False
    assert store.current_lease().pid == 200

    # releasing someone else's lease does nothing; releasing ours frees it
    assert store.release_lease(100, "hostA") is False
    assert store.current_lease().pid == 200
    assert store.release_lease(200, "hostA") is True
    assert store.current_lease() is None
    assert store.heartbeat(200, "hostA") is False
    assert store.acquire_lease(300, "hostC")[0] is True


def test_lease_is_stale() -> None:
    lease = LeaseInfo(1, "h", 0.0, 100.0)
    assert not lease.is_stale(105.0, 5.0)
    assert lease.is_stale(105.1, 5.0)


def test_lease_contention_across_stores(db_path: Path, store_url: str | None) -> None:
    """Many contenders on separate connections: exactly one wins."""
    stores = [StateStore(db_path, url=store_url) for _ in range(6)]
    results: list[bool] = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        ok, _ = stores[i].acquire_lease(1000 + i, "host", now=10.0)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(results) == [False] * 5 + [True]
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- concurrency


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from oneiric_core.events import Event
    from oneiric_core.store import StateStore

    store = StateStore(Path(sys.argv[1]), url=sys.argv[3] or None)
    tag = sys.argv[2]
    for i in range(200):
        store.append(Event(kind="host-started", message=f"{tag} {i}", actor=tag))
    store.close()
    """
)


def test_threads_and_processes_write_concurrently(db_path: Path, store_url: str | None) -> None:
    store = StateStore(db_path, url=store_url)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), f"proc{n}", store_url or ""],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=PROJECT_ROOT,
        )
        for n in range(4)
    ]
    errors: list[BaseException] = []

    def thread_writer(n: int) -> None:
        try:
            for i in range(100):
                if i % 10 == 0:
                    store.append_many([ev(message=f"t{n} batch {i} {j}", actor=f"t{n}") for j in range(5)])
                else:
                    store.append(ev(message=f"t{n} {i}", actor=f"t{n}"))
                if i % 25 == 0:
                    store.journal(limit=20, text=f"t{n}")
                    store.count_journal()
        except BaseException as exc:  # noqa: BLE001 - pragma: no cover; any error in a thread fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    # the test's own thread writes too
    for i in range(50):
        store.append(ev(message=f"main {i}", actor="main"))
    for t in threads:
        t.join()
    outputs = [p.communicate(timeout=120) for p in procs]
    try:
        for p, (_out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err.decode()
        assert errors == []
        per_thread = 90 + 10 * 5
        expected = 4 * 200 + 8 * per_thread + 50
        assert store.count_journal() == expected
        assert store.last_journal_id() == expected  # no gaps, no lost writes
        for n in range(4):
            assert len(store.journal(limit=1000, text=f"proc{n} ")) == 200
    finally:
        store.close()


# --------------------------------------------------------------------------- failures


def test_parent_is_a_file_gives_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        StateStore(blocker / "state.sqlite")
    msg = str(info.value)
    assert msg.startswith("cannot create the directory") and str(blocker / "state.sqlite") in msg
    assert "\n" not in msg


# A read-only state directory: tests/test_store_readonly.py, as a real non-root OS user (root
# ignores file modes, so a chmod here proved nothing on CI and skipped).


def test_full_disk_gives_store_error(sqlite_store: StateStore, db_path: Path) -> None:
    store = sqlite_store
    store.append(ev(message="before"))
    pages = store.pragma("page_count")
    assert store.pragma("max_page_count", pages) == pages
    big = "x" * 200_000
    with pytest.raises(StoreError) as info:
        for _ in range(5):
            store.append(ev(message=big))
    msg = str(info.value)
    assert "full" in msg
    assert msg == f"cannot write the state store {db_path}: database or disk is full"
    assert isinstance(info.value, OneiricError) and isinstance(info.value.__cause__, sqlite3.Error)
    # the failed transaction rolled back cleanly: the store is still usable for reads and small writes
    assert [e.message for e in store.journal()] == ["before"]
    store.pragma("max_page_count", 1_000_000)
    assert store.append(ev(message="after")).id is not None
    assert store.count_journal() == 2


# --------------------------------------------------------------------------- push


def test_a_listener_wakes_when_another_store_commits_and_not_otherwise(db_path: Path, store_url: str | None) -> None:
    """A reader that follows the store (a client console, `journal --follow`) is woken by a
    commit of any other connection, and says so; with nothing written it times out empty."""
    writer, reader = StateStore(db_path, url=store_url), StateStore(db_path, url=store_url)
    listener = reader.listen()
    try:
        assert listener.wait(0.2) == []
        done = threading.Event()

        def append_later() -> None:
            done.wait(0.3)
            writer.append(ev(message="pushed"))

        thread = threading.Thread(target=append_later)
        thread.start()
        notices = listener.wait(30.0)  # returns at the commit, not after 30 s: see the message below
        thread.join()
        assert notices, "the listener timed out although another store appended"
        last = reader.last_journal_id()
        assert notices == (["changed"] if store_url is None else [f"journal:{last}"])
        assert [e.message for e in reader.journal(after_id=last - 1)] == ["pushed"]
    finally:
        listener.close()
        writer.close()
        reader.close()
