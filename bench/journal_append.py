"""Benchmark: what the hash chain adds to a journal append (issue 11: "hashing adds under 10%
to journal append").

Two stores on real SQLite files side by side in one temporary directory, written in the same
run, interleaved round by round so a noisy machine slows both alike:

  chained     StateStore.append / append_many as they are: the tip read inside the write
              transaction (one PRAGMA data_version on the hot path), the row's canonical
              encoding, its SHA-256, the two extra columns
  unchained   the append of before the chain: the journal table as migrations 1-4 left it
              (AUTOINCREMENT ids, no hash columns), the same StateStore write transaction
              (`_write`, BEGIN IMMEDIATE .. COMMIT), the column preparation and the insert
              statement as they were (copied below from store.py before migration 5), no
              tip and no hash

The chain changed more than the hash: it gives each row its id itself, so schema 7 dropped
SQLite's AUTOINCREMENT counter (one B-tree write per append), and a stale tip is caught by the
insert's PRIMARY KEY instead of a PRAGMA per append. The verdict is on what an append costs now
against what it cost before; the `hash only` line shows what the hash itself costs.

Measured: one event per transaction (what the engine's emit() does for every event: the
target applies here) and, for information, batches of 100 events in one transaction (where
no transaction cost hides the hashing). A third line, `hash only`, times the encoding + SHA-256
of one row on its own.

Usage:  .venv/bin/python bench/journal_append.py [--quick] [--check] [--rounds N]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

import oneiric_core.store.journal as store_module  # noqa: E402  (the module whose node_row_hash appends use)
from oneiric_core.domains import Domain  # noqa: E402
from oneiric_core.events import Event, Severity  # noqa: E402
from oneiric_core.journal_hash import GENESIS, node_row_hash  # noqa: E402
from oneiric_core.store import MIGRATIONS, StateStore, _dom, _event_params  # noqa: E402

TARGET = 1.10  # chained / unchained, single-event appends
BATCH = 100
# The journal insert as it was before the chain (store.py before migration 5).
PRE_CHAIN_INSERT = (
    "INSERT INTO journal (ts, kind, severity, domain, key, provider, actor, outcome, "
    "duration_ms, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# The journal table and its indexes as migration 1 made them (migrations 2-4 left it alone).
PRE_CHAIN_TABLE = [step for step in MIGRATIONS[0] if isinstance(step, str) and "journal" in step.split("(")[0]]


def pre_chain_store(path: Path) -> StateStore:
    """A StateStore whose journal is the table of before the chain (schema 4)."""
    store = StateStore(path)
    conn = store._conn
    assert conn is not None
    conn.execute("DROP TABLE journal")
    for statement in PRE_CHAIN_TABLE:
        conn.execute(statement)
    return store


def extra_args(parser) -> None:
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 101, --quick 15)")


def event(n: int) -> Event:
    """A typical journal event: a swap-complete with a reference, an actor and a little data."""
    return Event("swap-complete", f"adapter/cache now served by memory-large (swap {n})", Severity.INFO,
                 Domain.ADAPTER, "cache", "memory-large", "bench", "complete", 3.25,
                 data={"from": "memory", "to": "memory-large", "activation_ms": 1.5, "health_ms": 0.4})


def pre_chain_params(event: Event) -> tuple[Any, ...]:
    """store._event_params as it was before the chain (no normalisation for the hash)."""
    severity = event.severity.value if isinstance(event.severity, Severity) else str(event.severity)
    return (float(event.ts), str(event.kind), severity, _dom(event.domain), event.key, event.provider,
            event.actor, event.outcome, event.duration_ms, event.message or "",
            json.dumps(event.data or {}, default=str, separators=(",", ":")))


def append_unchained(store: StateStore, events: list[Event]) -> None:
    params = [pre_chain_params(e) for e in events]

    def run(conn: sqlite3.Connection) -> list[int]:
        return [int(conn.execute(PRE_CHAIN_INSERT, p).lastrowid) for p in params]

    for e, new_id in zip(events, store._write(run), strict=True):
        e.id = new_id


def unhashed(store: StateStore, n: int) -> None:
    """store.append with the row's hash swapped for a constant: the chained append minus the
    hash itself (information: what the hash costs inside an append, not on its own)."""
    real = store_module.node_row_hash
    store_module.node_row_hash = _constant_hash
    try:
        store.append(event(n))
    finally:
        store_module.node_row_hash = real


def _constant_hash(prev_hash: str, row_id: int, columns: Any, node: Any) -> str:
    return GENESIS


def timed(fn, calls: int) -> float:
    """CPU microseconds (user + system, this process) per call of fn(i) over `calls` calls:
    an append is CPU work (WAL with synchronous=NORMAL does not fsync at commit), and CPU time
    does not count the time other processes of a shared machine hold the core."""
    t0 = time.process_time()
    for i in range(calls):
        fn(i)
    return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], extra=extra_args)
    rounds = args.rounds or (15 if args.quick else 101)
    singles, batches = (50, 2) if args.quick else (100, 5)
    print(_common.environment_line())
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-journal-") as tmp:
        chained, unchained = StateStore(Path(tmp) / "chained.sqlite"), pre_chain_store(Path(tmp) / "unchained.sqlite")
        no_hash = StateStore(Path(tmp) / "no-hash.sqlite")
        try:
            jobs = {
                ("single", "chained"): (lambda i: chained.append(event(i)), singles),
                ("single", "no hash"): (lambda i: unhashed(no_hash, i), singles),
                ("single", "unchained"): (lambda i: append_unchained(unchained, [event(i)]), singles),
                ("batch", "chained"): (lambda i: chained.append_many([event(j) for j in range(BATCH)]), batches),
                ("batch", "unchained"): (lambda i: append_unchained(unchained, [event(j) for j in range(BATCH)]),
                                         batches),
            }
            for fn, calls in jobs.values():  # warm up: the files, the caches, the tip
                timed(fn, max(1, calls // 10))
            samples: dict[tuple[str, str], list[float]] = {name: [] for name in jobs}
            order = list(jobs.items())
            for _ in range(rounds):
                for name, (fn, calls) in order:
                    samples[name].append(timed(fn, calls))
                order.reverse()  # neither side always runs right after the other's batch
            row = _event_params(event(0))
            hash_us = min(timed(lambda i: node_row_hash(GENESIS, i, row, "node-1"), 2000) for _ in range(5))
        finally:
            chained.close()
            unchained.close()
            no_hash.close()
    best = {name: min(values) for name, values in samples.items()}
    med = {name: _common.median(values) for name, values in samples.items()}
    # the median of each round's ratio: the two sides of a round ran back to back, under the same load
    ratio_single, ratio_batch = (
        _common.median([c / u for c, u in zip(samples[(kind, "chained")], samples[(kind, "unchained")], strict=True)])
        for kind in ("single", "batch"))
    hash_share = _common.median([c / n for c, n in zip(samples[("single", "chained")],
                                                        samples[("single", "no hash")], strict=True)])
    rows = [
        ["1 event / transaction", med[("single", "unchained")], med[("single", "chained")],
         best[("single", "unchained")], best[("single", "chained")], ratio_single],
        [f"{BATCH} events / transaction (per event)", med[("batch", "unchained")] / BATCH,
         med[("batch", "chained")] / BATCH, best[("batch", "unchained")] / BATCH,
         best[("batch", "chained")] / BATCH, ratio_batch],
        ["1 event, chained but the hash a constant", float("nan"), med[("single", "no hash")], float("nan"),
         best[("single", "no hash")], float("nan")],
        ["hash only (encode + sha256, per event)", float("nan"), hash_us, float("nan"), hash_us, float("nan")],
    ]
    print(f"{rounds} interleaved rounds; {singles} single appends and {batches} batches of {BATCH} per round")
    print(_common.table(["append", "unchained us", "chained us", "best unch. us", "best ch. us",
                         "ratio"], rows))
    ok = ratio_single < TARGET
    print(f"batches of {BATCH}: chained/unchained {ratio_batch:.2f}x (information; the engine appends one "
          "event per transaction)")
    print(f"the hash itself, inside an append: chained/constant-hash {hash_share:.2f}x (information; the "
          "chain also dropped AUTOINCREMENT and the per-append tip check, which the verdict counts)")
    print(_common.verdict(ok, f"the hash chain adds {100 * (ratio_single - 1):+.1f}% to a journal append "
                          f"(median of the rounds' ratios; {med[('single', 'chained')]:.1f} us vs "
                          f"{med[('single', 'unchained')]:.1f} us CPU; target under +{100 * (TARGET - 1):.0f}%)"))
    _common.finish(ok, args.check)


if __name__ == "__main__":
    main()
