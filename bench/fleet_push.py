"""Benchmark: how soon a journal event written by one process is read by another that
follows the store (issue 18 point 3: "an event on one node visible in another machine's
console within 250 ms").

A writer (this process) appends events, one every 30-80 ms, to a store on a fresh schema of
the PostgreSQL at $ONEIRIC_TEST_PG (default postgresql://127.0.0.1:5432/test). A reader in
another process follows the same store as the client console does (oneiric_tui/app.py
`_watch_store`): it waits on the store's Listener (LISTEN/NOTIFY) and reads the events after
the last one it saw. The baseline, measured in the same run against the same store, is the
reader as it was before push: a read every second (the console's follow timer). Latency is
from the writer's commit (its append returned) to the reader holding the event, both on
this machine's clock.

Usage:  .venv/bin/python bench/fleet_push.py [--quick] [--check] [--events N]
Exits 0 (it is a report) unless --check is given and the target FAILs; without a reachable
PostgreSQL it says so and exits 0 (or 1 with --check).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import _common  # noqa: E402

from oneiric_core.events import Event  # noqa: E402
from oneiric_core.store import StateStore  # noqa: E402

TARGET_MS = 250.0
DEFAULT_URL = "postgresql://127.0.0.1:5432/test"

READER = """
import json, sys, time
from pathlib import Path
from oneiric_core.store import StateStore

url, mode, count, state = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = StateStore(state / "state.sqlite", url=url)
listener = store.listen() if mode == "push" else None
last, seen = store.last_journal_id(), 0
print("ready", flush=True)
while seen < count:
    if listener is not None:
        listener.wait(1.0)
    else:
        time.sleep(1.0)
    for event in store.journal(limit=1000, after_id=last):
        print(json.dumps({"id": event.id, "at": time.time()}), flush=True)
        last, seen = event.id, seen + 1
"""


def extra_args(parser) -> None:
    parser.add_argument("--events", type=int, default=None, help="events per reader (default 40, --quick 5)")


def measure(url: str, mode: str, count: int, state: Path) -> list[float]:
    """Milliseconds from each append's commit to the reader having it."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    reader = subprocess.Popen([sys.executable, "-c", READER, url, mode, str(count), str(state)],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert reader.stdout is not None
    if reader.stdout.readline().strip() != "ready":
        raise SystemExit(f"the {mode} reader did not start")
    committed: dict[int, float] = {}
    with StateStore(state / "writer.sqlite", url=url) as writer:
        for i in range(count):
            time.sleep(random.uniform(0.03, 0.08))
            event = writer.append(Event("health-changed", f"{mode} {i}"))
            committed[int(event.id or 0)] = time.time()
    latencies = []
    for line in reader.stdout:
        got = json.loads(line)
        latencies.append((got["at"] - committed[got["id"]]) * 1000)
    reader.wait(30)
    return latencies


def main() -> int:
    args = _common.parse_args(__doc__.splitlines()[0], extra=extra_args)
    count = args.events or (5 if args.quick else 40)
    url = os.environ.get("ONEIRIC_TEST_PG", "").strip() or DEFAULT_URL
    try:
        import psycopg

        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server is the one line printed
        print(f"no PostgreSQL at {url} ({' '.join(str(exc).split())}): set ONEIRIC_TEST_PG to run this benchmark")
        return 1 if args.check else 0
    schema = f"oneiric_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    store_url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    print(_common.environment_line())
    print(f"{count} events per reader, one every 30-80 ms, PostgreSQL at {url}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            StateStore(Path(tmp) / "setup.sqlite", url=store_url).close()  # the schema, before either reader
            push = measure(store_url, "push", count, Path(tmp))
            poll = measure(store_url, "poll", count, Path(tmp))
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
    rows = []
    for name, values in (("push (LISTEN/NOTIFY)", push), ("poll every 1 s (before)", poll)):
        rows.append([name, len(values), _common.median(values), _common.percentile(values, 95), max(values)])
    print(_common.table(["reader", "events", "median ms", "p95 ms", "max ms"], rows))
    ratio = _common.median(push) / _common.median(poll)
    print(f"push/poll median: {ratio:.3f}x")
    p95 = _common.percentile(push, 95)
    ok = len(push) == count and p95 <= TARGET_MS
    print(_common.verdict(ok, f"an event reaches a following reader within {TARGET_MS:g} ms "
                              f"(p95 {p95:.1f} ms with push)"))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
