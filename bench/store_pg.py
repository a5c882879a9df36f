"""Benchmark: the state store on PostgreSQL against SQLite (issue 18: "store operations on
PostgreSQL within 3x of SQLite for journal append (batched) and status reads").

Two StateStores side by side in one run, one on a SQLite file in a temporary directory and one
on a fresh schema of the PostgreSQL at $ONEIRIC_TEST_PG (default postgresql://127.0.0.1:5432/test),
each with the same rows, timed interleaved round by round so a noisy moment hits both alike:

  append batched   100 events in one `append_many` (one transaction: what a writer that
                   buffers the journal does), per event
  append one       one event per `append` (its own transaction: what the engine's emit() does
                   today), per event: for information, no target
  status read      what `oneiric status` reads from a host's store for 1,000 keys: every
                   lifecycle snapshot, every health snapshot, the pending proposals

The verdict is on the median ratio (PostgreSQL / SQLite) of each, target 3x.

Usage:  .venv/bin/python bench/store_pg.py [--quick] [--check] [--rounds N]
Exits 0 (it is a report) unless --check is given and a target FAILs; without a reachable
PostgreSQL it says so and exits 0 (or 1 with --check).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402
import _pg  # noqa: E402

from oneiric_core.events import Event  # noqa: E402
from oneiric_core.store import HealthSnapshot, LifecycleSnapshot, StateStore  # noqa: E402

TARGET = 3.0


def extra_args(parser) -> None:
    parser.add_argument("--rounds", type=int, default=None, help="measured rounds (default 15, --quick 3)")


def fill(store: StateStore, keys: int) -> None:
    with store.batch():
        for i in range(keys):
            store.put_lifecycle(LifecycleSnapshot("adapter", f"k{i}", "ready", "memory", "settings"))
            store.put_health(HealthSnapshot("adapter", f"k{i}", "memory", "ok", 1.0, "", 1.0, 1.0))


def append_batched(store: StateStore, n: int) -> float:
    """Microseconds per event of `n` events appended in one append_many."""
    events = [Event("health-changed", f"event {i}", data={"i": i}) for i in range(n)]
    t0 = time.perf_counter()
    store.append_many(events)
    return (time.perf_counter() - t0) / n * 1e6


def append_one(store: StateStore, n: int) -> float:
    """Microseconds per event of `n` events appended one transaction each."""
    t0 = time.perf_counter()
    for i in range(n):
        store.append(Event("health-changed", f"event {i}", data={"i": i}))
    return (time.perf_counter() - t0) / n * 1e6


def status_read(store: StateStore) -> float:
    t0 = time.perf_counter()
    store.all_lifecycle()
    store.all_health()
    store.proposals(status="pending", limit=10_000)
    return (time.perf_counter() - t0) * 1000


def measure(pg_schema: _pg.BenchSchema, keys: int, batch: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    print(_common.environment_line())
    print(f"PostgreSQL: {pg_schema.version} at {pg_schema.server}; {keys} keys, batches of {batch}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = StateStore(Path(tmp) / "sqlite" / "state.sqlite")
        pg = StateStore(Path(tmp) / "pg" / "state.sqlite", url=pg_schema.store_url)
        try:
            for store in (sqlite, pg):
                fill(store, keys)
                append_batched(store, batch)  # warm-up
                status_read(store)
            figures: dict[str, dict[str, list[float]]] = {
                "append batched (us/event)": {"sqlite": [], "pg": []},
                "status read (ms)": {"sqlite": [], "pg": []},
                "append one (us/event)": {"sqlite": [], "pg": []},
            }
            for _ in range(rounds):
                for name, store in (("sqlite", sqlite), ("pg", pg)):
                    figures["append batched (us/event)"][name].append(append_batched(store, batch))
                    figures["status read (ms)"][name].append(status_read(store))
                    figures["append one (us/event)"][name].append(append_one(store, 20))
        finally:
            sqlite.close()
            pg.close()
    return figures


def main() -> int:
    args = _common.parse_args(__doc__.splitlines()[0], extra=extra_args)
    rounds = args.rounds or (3 if args.quick else 15)
    keys, batch = (100, 20) if args.quick else (1000, 100)
    try:
        with _pg.bench_schema() as pg_schema:
            figures = measure(pg_schema, keys, batch, rounds)
    except _pg.NoServer as exc:
        print(exc)
        return 1 if args.check else 0
    rows, ok = [], True
    for operation, by in figures.items():
        s, p = _common.median(by["sqlite"]), _common.median(by["pg"])
        ratio = p / s if s else float("inf")
        targeted = not operation.startswith("append one")
        ok = ok and (ratio <= TARGET or not targeted)
        rows.append([operation, f"{s:.1f}", f"{p:.1f}", f"{ratio:.2f}x" + ("" if targeted else " (info)")])
    print(_common.table(["operation", "sqlite", "postgresql", "ratio"], rows))
    print(_common.verdict(ok, f"PostgreSQL within {TARGET:g}x of SQLite for batched appends and status reads"))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
