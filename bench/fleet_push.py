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

Second part (issue 18 point 3: "a command for a node's host is picked up within 100 ms of
being written"): a real host (`oneiric run --node web-2`) on the same store; `pause` and
`resume` of one key, alternately, sent to it through the store (operator_port.OverStore: a
request row, NOTIFY, the host's inbox) and, as the baseline in the same run, over the host's
own socket (OverSocket). Pickup is from the row's insert (the server's clock) to the host
taking it (the host's clock; one machine here); round trip is the sender's wall time.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import _common  # noqa: E402
import _pg  # noqa: E402

from oneiric_core.events import Event  # noqa: E402
from oneiric_core.store import StateStore  # noqa: E402

TARGET_MS = 250.0
PICKUP_TARGET_MS = 100.0

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


def start_host(store_url: str, tmp: Path):
    """A real host of node web-2 on the store, ready (its node report is in)."""
    import shutil

    settings = tmp / "settings"
    shutil.copytree(REPO / "settings", settings)
    with (settings / "app.yml").open("a") as app:
        app.write(f"\nstore:\n  url: \"{store_url}\"\n")
    state = tmp / "host-state"
    log = (tmp / "host.log").open("w")
    host = subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                             str(state), "--node", "web-2", "run"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    with StateStore(tmp / "watch.sqlite", url=store_url) as store:
        deadline = time.monotonic() + 60
        while not any(n.node == "web-2" and n.summary for n in store.nodes()):
            if time.monotonic() > deadline or host.poll() is not None:
                raise SystemExit(f"the host did not start: {(tmp / 'host.log').read_text()[-2000:]}")
            time.sleep(0.1)
    return host, state


def requests_to_host(store_url: str, tmp: Path, count: int) -> tuple[list[float], list[float], list[float]]:
    """Pickup ms (store), round trip ms through the store, round trip ms over the socket."""
    from oneiric_core.commands import Request
    from oneiric_core.operator_port import OverSocket, OverStore
    from oneiric_core.wire import socket_path

    host, state = start_host(store_url, tmp)
    pickup, via_store, via_socket = [], [], []
    try:
        with StateStore(tmp / "sender.sqlite", url=store_url, node="ops") as store:
            transports = (("store", OverStore(store, "web-2")), ("socket", OverSocket(socket_path(state))))
            for i in range(count):
                kind = "pause" if i % 2 == 0 else "resume"
                for name, transport in transports:
                    t0 = time.perf_counter()
                    result = transport.exchange(Request(kind, {"domain": "adapter", "key": "cache"}), wait=10)
                    took = (time.perf_counter() - t0) * 1000
                    if result.exit_code != 0:
                        raise SystemExit(f"{kind} {name}: {result.message}")
                    (via_store if name == "store" else via_socket).append(took)
                    if name == "store":
                        kind = "resume" if kind == "pause" else "pause"  # the socket undoes it
            for record_id, in store.backend.read("SELECT id FROM requests ORDER BY id"):
                record = store.requests.get(int(record_id))
                if record is not None and record.taken_at is not None:
                    pickup.append((record.taken_at - record.created_at) * 1000)
    finally:
        host.terminate()
        host.wait(30)
    return pickup, via_store, via_socket


def main() -> int:
    args = _common.parse_args(__doc__.splitlines()[0], extra=extra_args)
    count = args.events or (5 if args.quick else 40)
    try:
        with _pg.bench_schema() as pg_schema:
            print(_common.environment_line())
            print(f"{count} events per reader, one every 30-80 ms, PostgreSQL at {pg_schema.server}")
            with tempfile.TemporaryDirectory() as tmp:
                StateStore(Path(tmp) / "setup.sqlite", url=pg_schema.store_url).close()  # the schema, first
                push = measure(pg_schema.store_url, "push", count, Path(tmp))
                poll = measure(pg_schema.store_url, "poll", count, Path(tmp))
                pickup, via_store, via_socket = requests_to_host(pg_schema.store_url, Path(tmp), max(4, count // 2))
    except _pg.NoServer as exc:
        print(exc)
        return 1 if args.check else 0
    rows = []
    for name, values in (("push (LISTEN/NOTIFY)", push), ("poll every 1 s (before)", poll)):
        rows.append([name, len(values), _common.median(values), _common.percentile(values, 95), max(values)])
    print(_common.table(["reader", "events", "median ms", "p95 ms", "max ms"], rows))
    ratio = _common.median(push) / _common.median(poll)
    print(f"push/poll median: {ratio:.3f}x")
    p95 = _common.percentile(push, 95)
    ok = len(push) == count and p95 <= TARGET_MS
    print(_common.verdict(ok, f"an event reaches a following reader within {TARGET_MS:g} ms "
                              f"(p95 {p95:.1f} ms with push; {len(push)} of {count} events arrived)",
                          holds=len(push) == count))
    print()
    rows = [["picked up by the host (store)", len(pickup), _common.median(pickup), _common.percentile(pickup, 95),
             max(pickup)],
            ["round trip through the store", len(via_store), _common.median(via_store),
             _common.percentile(via_store, 95), max(via_store)],
            ["round trip over the socket (baseline)", len(via_socket), _common.median(via_socket),
             _common.percentile(via_socket, 95), max(via_socket)]]
    print(_common.table(["request to web-2's host", "n", "median ms", "p95 ms", "max ms"], rows))
    print(f"store/socket round trip median: {_common.median(via_store) / _common.median(via_socket):.2f}x")
    pickup_p95 = _common.percentile(pickup, 95)
    picked = len(pickup) == len(via_store) and pickup_p95 <= PICKUP_TARGET_MS
    print(_common.verdict(picked, f"a request for a node's host is picked up within {PICKUP_TARGET_MS:g} ms "
                                  f"(p95 {pickup_p95:.1f} ms; {len(pickup)} of {len(via_store)} picked up)",
                          holds=len(pickup) == len(via_store)))
    ok = ok and picked
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
