"""Journal retention (issue 12, point 5): it keeps what an open incident needs, runs off the
host's event loop in short transactions, leaves the chain verifiable and gives space back.

Real SQLite files throughout, incidents opened and closed through runbooks/incidents.py, the
host's prune run by a started host Engine, `journal verify` and `status` in real CLI
subprocesses. No timing is asserted (bench/prune.py measures the loop's stalls)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from oneiric_core import retention
from oneiric_core.domains import Domain
from oneiric_core.engine import Engine
from oneiric_core.events import Event
from oneiric_core.journal_chain import verify
from oneiric_core.journal_hash import GENESIS, row_hash
from oneiric_core.retention import RetentionPolicy
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.store import AUTO_VACUUM_INCREMENTAL, SCHEMA_VERSION, VACUUM_META, StateStore
from oneiric_core.store.records import CHAIN_COLUMNS, NODE_CHAINS_META
from tests.helpers import settings_with, until

KEEP_100 = RetentionPolicy(max_age_s=None, max_rows=100)


@pytest.fixture
def eng(demo_settings: Path, tmp_path: Path):
    """An engine that is not the host (nothing prunes behind the test's back), on the state
    directory `run_cli` uses."""
    engine = Engine(demo_settings, state_dir=tmp_path / "state", actor="tester")
    yield engine
    engine.close()


def storage_events(n: int, *, ts: float, prefix: str) -> list[Event]:
    """`n` events of adapter/storage (a component no incident involves), one second apart from `ts`."""
    return [Event("health-changed", f"{prefix} {i}", domain=Domain.ADAPTER, key="storage", ts=ts + i)
            for i in range(n)]


def messages(store: StateStore) -> set[str]:
    return {e.message for e in store.journal(limit=100_000)}


def verify_cli(run_cli) -> str:
    res = run_cli("journal", "verify")
    assert res.returncode == 0, str(res)
    return res.stdout


# -- what an open incident keeps ----------------------------------------------------------------------


def test_an_open_incident_keeps_its_components_events_and_its_window(eng: Engine, run_cli) -> None:
    store, now = eng.store, time.time()
    store.append_many(storage_events(50, ts=now - 5000, prefix="early"))
    store.append(Event("swap-failed", "cache: redis refused", domain=Domain.ADAPTER, key="cache", ts=now - 4000))
    store.append_many(storage_events(250, ts=now - 3000, prefix="before"))
    inc = Incidents(eng).open("cache down", "P2", refs=["adapter/cache"])
    store.append(Event("swap-started", "cache: trying sqlite", domain=Domain.ADAPTER, key="cache"))
    store.append_many(storage_events(300, ts=time.time(), prefix="during"))

    report = retention.prune(store, KEEP_100)

    kept = messages(store)
    # the component's event from before the incident opened, and everything after it, stay
    assert "cache: redis refused" in kept and "cache: trying sqlite" in kept
    assert {f"during {i}" for i in range(300)} <= kept and {f"before {i}" for i in range(250)} <= kept
    assert not any(m.startswith("early ") for m in kept)  # only the rows before it went
    assert report.pruned == 50 and store.count_journal() > 100
    assert report.held_by is not None and (report.held_by.incident, report.held_by.ref) == (inc.id, "adapter/cache")
    assert f"retention held back by open incident #{inc.id} (cache down) since " in report.sentence()
    assert "(an event of adapter/cache, which it involves) are kept until it closes" in report.sentence()
    # the incident's timeline still shows the component's event of its window
    assert "swap-started: cache: trying sqlite" in {e.text for e in Incidents(eng).timeline(inc.id)}
    assert verify(store).intact
    assert verify_cli(run_cli).startswith("journal intact: ")


def test_an_open_incident_keeps_every_event_since_it_opened(eng: Engine) -> None:
    store, now = eng.store, time.time()
    store.append_many(storage_events(400, ts=now - 5000, prefix="before"))
    inc = Incidents(eng).open("storage slow", "P3")  # no component involved: its window alone
    store.append_many(storage_events(300, ts=time.time(), prefix="during"))

    report = retention.prune(store, KEEP_100)

    kept = messages(store)
    assert {f"during {i}" for i in range(300)} <= kept and not any(m.startswith("before ") for m in kept)
    assert report.pruned == 400
    assert report.held_by is not None and report.held_by.incident == inc.id and report.held_by.ref is None
    assert "(an event from the time it has been open)" in report.sentence()
    assert verify(store).intact


def test_closing_the_incident_lets_the_next_prune_take_them(eng: Engine, run_cli) -> None:
    store, now = eng.store, time.time()
    store.append(Event("swap-failed", "cache: redis refused", domain=Domain.ADAPTER, key="cache", ts=now - 4000))
    incidents = Incidents(eng)
    inc = incidents.open("cache down", "P2", refs=["adapter/cache"])
    store.append_many(storage_events(300, ts=time.time(), prefix="during"))
    assert retention.prune(store, KEEP_100).pruned == 0
    assert "cache: redis refused" in messages(store)

    incidents.close(inc.id, "sqlite serves the cache")
    report = retention.prune(store, KEEP_100)

    assert report.held_by is None and report.pruned > 0
    assert store.count_journal() == 100 and "cache: redis refused" not in messages(store)
    assert verify(store).intact
    verify_cli(run_cli)


def test_status_says_which_incident_holds_retention_back(eng: Engine, run_cli) -> None:
    store = eng.store
    store.append_many(storage_events(200, ts=time.time() - 5000, prefix="before"))
    incidents = Incidents(eng)
    inc = incidents.open("cache \x1b]0;pwned\x07 down", "P2", refs=["adapter/storage"])  # a title with control codes
    store.append_many(storage_events(200, ts=time.time(), prefix="during"))
    retention.prune(store, KEEP_100)

    status = run_cli("status")
    assert status.returncode == 0, str(status)
    line = next(ln for ln in status.stdout.splitlines() if "retention held back" in ln)
    assert line.startswith(f"journal retention held back by open incident #{inc.id} (cache \\x1b]0;pwned\\x07 down)")
    assert "\x1b" not in status.stdout
    data = run_cli("status", "--json").json()["journal_retention"]
    assert data["held_by"]["incident"] == inc.id and data["held_by"]["ref"] == "adapter/storage"

    incidents.close(inc.id, "fixed")  # until the next prune, the closed incident is no longer named
    status = run_cli("status")
    assert "retention held back" not in status.stdout
    assert run_cli("status", "--json").json()["journal_retention"]["held_by"] is None


# -- the chain and the file ---------------------------------------------------------------------------


def test_journal_verify_is_intact_after_many_batches(eng: Engine, run_cli) -> None:
    store = eng.store
    for first in range(0, 12_000, 3000):
        store.append_many(storage_events(3000, ts=time.time() - 9000 + first, prefix="old"))
    # a tiny time target keeps every step at the smallest size: dozens of transactions
    report = retention.prune(store, KEEP_100, target_s=1e-6, pause_s=0)

    assert report.pruned == 11_900 and report.batches >= 20
    assert store.count_journal() == 100
    result = verify(store)
    assert result.intact, result.sentence()
    assert result.anchor.id == 11_900 and result.first_id == 11_901
    store.append(Event("config-changed", "after the prune"))
    assert verify_cli(run_cli).startswith("journal intact: 101 events from #11901 to #12001")


def test_the_file_shrinks_after_pruning_many_rows(eng: Engine) -> None:
    store = eng.store
    assert store.auto_vacuum() == AUTO_VACUUM_INCREMENTAL  # a new store is made incremental
    payload = "x" * 400
    for first in range(0, 20_000, 5000):
        store.append_many(Event("health-changed", f"{payload} {i}", domain=Domain.ADAPTER, key="storage",
                                ts=time.time() - 9000 + i) for i in range(first, first + 5000))
    store.pragma("wal_checkpoint", "TRUNCATE")
    before = store.file_bytes()

    report = retention.prune(store, KEEP_100)

    assert report.pruned == 19_900 and report.pages_reclaimed > 0
    assert store.free_pages() == 0
    assert report.bytes_before == before and report.bytes_after < before / 2
    assert store.file_bytes() < before / 2
    assert "the store went from " in report.sentence()


def test_a_prune_asked_to_stop_returns_between_two_steps(eng: Engine) -> None:
    store = eng.store
    store.append_many(storage_events(5000, ts=time.time() - 9000, prefix="old"))
    stop = threading.Event()
    stop.set()

    report = retention.prune(store, KEEP_100, stop=stop)

    assert report.interrupted and 0 < report.pruned < 4900 and report.batches == 1
    assert "it stopped early because the host is stopping" in report.sentence()
    assert verify(store).intact
    assert retention.prune(store, KEEP_100).pruned == 4900 - report.pruned


# -- the host prunes off its event loop ----------------------------------------------------------------


async def test_the_host_prunes_on_a_worker_thread_while_its_loop_keeps_running(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "journal:\n  max_rows: 100\n")
    host = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    for first in range(0, 30_000, 10_000):
        host.store.append_many(storage_events(10_000, ts=time.time() - 90_000 + first, prefix="old"))
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.time())
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(ticker())
    try:
        await host.start()  # the host prunes at start, on a worker thread
        pruned = await until(lambda: host.journal(kinds=["journal-pruned"]), "the host's prune", timeout=60)
    finally:
        done.set()
        await beat
        await host.stop()
        host.close()
    data = pruned[-1].data
    assert data["pruned"] >= 29_900 and data["batches"] > 1
    started, finished = data["at"] - data["took_s"], data["at"]
    during = [t for t in ticks if started <= t <= finished]
    # the loop ran the ticker all along the prune (a prune on the loop would leave none in there)
    assert len(during) >= 20, f"{len(during)} ticks during a prune of {data['took_s']:.2f}s"


# -- migration 8: stores made before it ---------------------------------------------------------------


def old_store(path: Path, rows: int) -> None:
    """A store as a program of schema 7 left it: `rows` chained rows (its append wrote them
    as this one does), auto_vacuum NONE (the file rebuilt by a VACUUM without it), user_version 7."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with StateStore(path) as store:
        for first in range(0, rows, 5000):
            store.append_many(storage_events(min(5000, rows - first), ts=time.time() - 9000 + first, prefix="old"))
    raw = sqlite3.connect(path, isolation_level=None)
    # what steps 9, 10 and 12 added, taken out again (schema 7 had none of it)
    for statement in ("DROP TABLE nodes", "CREATE TABLE lease (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER "
                      "NOT NULL, hostname TEXT NOT NULL, started_at REAL NOT NULL, heartbeat_at REAL NOT NULL)",
                      *(f"ALTER TABLE {t} DROP COLUMN node" for t in ("journal", "lifecycle", "health", "activity",
                                                                       "commands", "proposals", "incidents"))):
        raw.execute(statement)
    # and its journal one global chain of format 1 (step 13 made it one per node)
    raw.execute("DELETE FROM meta WHERE key = ?", (NODE_CHAINS_META,))
    prev, updates = GENESIS, []
    for row in raw.execute(f"SELECT {CHAIN_COLUMNS} FROM journal ORDER BY id").fetchall():
        digest = row_hash(prev, row[0], row[1:])
        updates.append((prev, digest, row[0]))
        prev = digest
    raw.executemany("UPDATE journal SET prev_hash = ?, hash = ? WHERE id = ?", updates)
    raw.execute("PRAGMA auto_vacuum = NONE")
    raw.execute("VACUUM")  # the file as schema 7 made it: no incremental vacuum
    raw.execute("PRAGMA user_version = 7")
    raw.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    raw.close()


def test_an_older_store_is_vacuumed_once_into_incremental_and_then_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.sqlite"
    old_store(path, 10_000)
    with StateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.auto_vacuum() == AUTO_VACUUM_INCREMENTAL and store.get_meta(VACUUM_META) is None
        assert store.vacuum_owed() is None
        assert verify(store).intact
        store.pragma("wal_checkpoint", "TRUNCATE")
        before = store.file_bytes()
        report = retention.prune(store, KEEP_100)
        assert report.pruned == 9900 and report.bytes_after < before / 2 and report.not_reclaimed is None


def test_a_failed_one_time_vacuum_is_reported_and_tried_again_later(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.sqlite"
    old_store(path, 3000)
    raw = sqlite3.connect(path, isolation_level=None)
    # as a store is left when the VACUUM failed a minute ago (a full disk, say): migrated through
    # step 8 (steps 9 and 10 then run at the next open, as they would)
    raw.execute("PRAGMA user_version = 8")
    raw.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (VACUUM_META, json.dumps({"failed_at": time.time() - 60, "reason": "database or disk is full"})))
    raw.close()
    with StateStore(path) as store:
        assert store.auto_vacuum() == 0  # not tried again so soon
        report = retention.prune(store, KEEP_100)
        assert report.pruned == 2900 and report.pages_reclaimed == 0
        assert report.not_reclaimed == ("the store predates incremental vacuum and its one-time VACUUM failed "
                                        "(database or disk is full)")
        assert "the file keeps its size: the store predates incremental vacuum" in report.sentence()
        store.set_meta(VACUUM_META, {"failed_at": time.time() - 7200, "reason": "database or disk is full"})
    with StateStore(path) as store:  # an hour later, the next open tries again
        assert store.auto_vacuum() == AUTO_VACUUM_INCREMENTAL and store.get_meta(VACUUM_META) is None
        assert verify(store).intact
