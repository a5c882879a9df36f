"""Benchmark: what the rollout machinery costs per node beyond the swaps themselves (issue 18:
"rollout machinery overhead per node under 50 ms beyond the providers' own build and health
time").

Real hosts (`oneiric run --node bench-N`) on a fresh schema of the PostgreSQL at
$ONEIRIC_TEST_PG (default postgresql://127.0.0.1:5432/test), the demo's settings. A rollout of
adapter/cache to sqlite, one node per batch and no soak, so the nodes swap one after the
other; then one back to memory. The baseline, measured in the same run, is the swaps
themselves: each node's own `swap-complete` duration (build, start, health gate, cleanup, as
its lifecycle journals it). The overhead is the rollout's time, from its approval to its end,
less the sum of those durations, per node: the coordinator's store round trips, the request
rows, the wake-ups between steps.

Usage:  .venv/bin/python bench/rollout.py [--quick] [--check] [--nodes N]
Exits 0 (it is a report) unless --check is given and the target FAILs; without a reachable
PostgreSQL it says so and exits 0 (or 1 with --check).
"""

from __future__ import annotations

import os
import shutil
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

from oneiric_core.rollout import RolloutOptions  # noqa: E402
from oneiric_core.store import StateStore  # noqa: E402

TARGET_MS = 50.0


def extra_args(parser) -> None:
    parser.add_argument("--nodes", type=int, default=None, help="hosts (default 4, --quick 2)")


def start_hosts(url: str, tmp: Path, names: list[str]) -> list[subprocess.Popen[bytes]]:
    settings = tmp / "settings"
    shutil.copytree(REPO / "settings", settings)
    with (settings / "app.yml").open("a") as app:
        app.write(f"\nstore:\n  url: \"{url}\"\n")
    hosts = []
    for name in names:
        log = (tmp / f"{name}.log").open("w")
        hosts.append(subprocess.Popen([sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings),
                                       "--state-dir", str(tmp / f"state-{name}"), "--node", name, "run"],
                                      cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
    with StateStore(tmp / "watch.sqlite", url=url, node="bench") as store:
        deadline = time.monotonic() + 90
        while not all(any(n.node == name and n.summary for n in store.nodes()) for name in names):
            if time.monotonic() > deadline:
                raise SystemExit("the hosts did not start: " + (tmp / f"{names[0]}.log").read_text()[-2000:])
            time.sleep(0.1)
    return hosts


def roll(store: StateStore, provider: str, names: list[str]) -> tuple[float, float]:
    """(the rollout's wall ms from approval to end, the sum of the nodes' own swap ms)."""
    plan = [[name] for name in names]
    options = RolloutOptions(canary=1, batch="1", soak_s=0.0).to_dict()
    after = store.last_journal_id()
    rollout_id = store.rollouts.create("adapter", "cache", provider, plan, options, "bench", "bench")
    if store.rollouts.decide(rollout_id, "approved", two_person=False) != "decided":
        raise SystemExit("the rollout was not approved")
    listener = store.listen()
    try:
        while True:
            rollout = store.rollouts.get(rollout_id)
            assert rollout is not None
            if rollout.finished:
                break
            listener.wait(1.0)
    finally:
        listener.close()
    if rollout.status != "done":
        raise SystemExit(f"rollout #{rollout_id} {rollout.status}: {rollout.halted_reason}")
    swaps = [e for e in store.journal(limit=10_000, after_id=after, kinds=["swap-complete"])
             if e.key == "cache" and e.provider == provider]
    if len(swaps) != len(names):
        raise SystemExit(f"{len(swaps)} swap-complete events for {len(names)} nodes")
    if os.environ.get("BENCH_TRACE"):
        t0 = rollout.decided_at or rollout.created_at
        for step in rollout.steps:
            req = store.requests.get(step.request_id or 0)
            print(f"  {step.node}: started {((step.started_at or 0) - t0) * 1000:7.1f}  taken "
                  f"{((req.taken_at or 0) - t0) * 1000 if req else 0:7.1f}  answered "
                  f"{((req.finished_at or 0) - t0) * 1000 if req else 0:7.1f}  soak "
                  f"{((step.soak_from or 0) - t0) * 1000:7.1f}"
                  f"  done {((step.finished_at or 0) - t0) * 1000:7.1f}")
    wall = (rollout.updated_at - (rollout.decided_at or rollout.created_at)) * 1000
    return wall, sum(float(e.duration_ms or 0.0) for e in swaps)


def main() -> int:
    args = _common.parse_args(__doc__.splitlines()[0], extra=extra_args)
    count = args.nodes or (2 if args.quick else 4)
    names = [f"bench-{i}" for i in range(1, count + 1)]
    rows, overheads = [], []
    try:
        with _pg.bench_schema() as pg_schema, tempfile.TemporaryDirectory() as tmp:
            print(_common.environment_line())
            print(f"{count} hosts, one node per batch, no soak; PostgreSQL at {pg_schema.server}")
            hosts = start_hosts(pg_schema.store_url, Path(tmp), names)
            try:
                with StateStore(Path(tmp) / "bench.sqlite", url=pg_schema.store_url, node="bench") as store:
                    for provider in ("sqlite", "memory"):
                        wall, swaps = roll(store, provider, names)
                        per_node = (wall - swaps) / count
                        overheads.append(per_node)
                        rows.append([f"to {provider}", count, wall, swaps, per_node])
            finally:
                for host in hosts:
                    host.terminate()
                for host in hosts:
                    host.wait(30)
    except _pg.NoServer as exc:
        print(exc)
        return 1 if args.check else 0
    print(_common.table(["rollout", "nodes", "wall ms", "swaps ms (baseline)", "overhead ms/node"], rows))
    worst = max(overheads)
    ok = worst <= TARGET_MS
    print(_common.verdict(ok, f"the rollout machinery adds under {TARGET_MS:g} ms per node beyond the swaps "
                              f"(worst {worst:.1f} ms)"))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
