"""Benchmark: the console over a fleet of 50 nodes x 200 keys on PostgreSQL (issue 18).

Two figures, each against a baseline measured in the same run:

  first frame     the fleet view (`:fleet`: nodes, key x node matrix, drift) over 50 nodes x
                  200 keys (10,000 lifecycle and health rows, as 50 hosts write them), from
                  process spawn to the first frame that shows the matrix filled, against an
                  empty Textual app (Header + Footer) started the same way: within 3x.
  event to frame  an event one node's host journals, visible in another process's console of
                  that node (a client following the store: LISTEN/NOTIFY, the swap log, the
                  next frame), from the writer's commit to the frame that shows it: p95 under
                  250 ms. The baseline beside it: a bare store Listener on its own connection
                  waking for the same commits (what the console adds is the ratio).

Each first-frame run is a fresh process (interleaved: empty, fleet, empty, fleet, ...); the
console of the second figure runs headless in a child process, the writer in this one, so the
event crosses processes (and connections) as it would between machines. Needs PostgreSQL
($ONEIRIC_TEST_PG, default postgresql://127.0.0.1:5432/test); without one it prints one line.

Usage:  .venv/bin/python bench/fleet_view.py [--quick] [--check] [--runs N] [--nodes N] [--keys N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_WALL_AT_START = time.time()
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import _pg  # noqa: E402

SPAWN_ENV = "ONEIRIC_BENCH_SPAWN"
PHASES = (("spawn", "first_statement"), ("first_statement", "imported"), ("imported", "engine_built"),
          ("engine_built", "first_frame"))
SIZE = (160, 50)
FRAME_RATIO_TARGET = 3.0
EVENT_P95_TARGET_MS = 250.0


# -- children ----------------------------------------------------------------------------------

def _child(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["empty", "fleet", "follow"])
    parser.add_argument("--settings")
    parser.add_argument("--state")
    parser.add_argument("--node", default="viewer")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    marks: dict[str, Any] = {"spawn": float(os.environ[SPAWN_ENV]), "first_statement": _WALL_AT_START}
    if args.kind == "follow":
        _follow_child(args, marks)
        return
    from textual.app import App, ComposeResult

    engine: Any = None
    if args.kind == "empty":
        from textual.widgets import Footer, Header

        class EmptyApp(App):
            def compose(self) -> ComposeResult:
                yield Header()
                yield Footer()

        marks["imported"] = time.time()
        app: App = EmptyApp()

        def shown(screen: Any) -> bool:
            return screen is app.screen
    else:
        from oneiric_core.engine import Engine
        from oneiric_tui.screens.fleet import FleetScreen

        marks["imported"] = time.time()
        engine = Engine(args.settings, state_dir=args.state, actor="operator", node=args.node)
        marks["engine_built"] = time.time()

        class FleetApp(App):
            """The fleet view alone, as `:fleet` shows it (FleetScreen reads `app.engine`)."""

            def __init__(self) -> None:
                super().__init__()
                self.engine = engine
                self.fleet_screen = FleetScreen(engine)  # as `:fleet` does: made, then pushed

            def on_mount(self) -> None:
                self.push_screen(self.fleet_screen)

        app = FleetApp()

        def shown(screen: Any) -> bool:
            if not isinstance(screen, FleetScreen) or screen.fleet is None:
                return False
            marks["rows"] = screen.query_one("#fleet-matrix").row_count
            marks["nodes"] = len(screen.fleet.nodes)
            return bool(marks["rows"])

    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if "first_frame" in marks or renderable is None or app._batch_count or not shown(screen):
            return
        if hasattr(renderable, "render_segments"):  # headless skips the terminal output: do it
            renderable.render_segments(app.console)
        else:
            app.console.render(renderable)
        marks["first_frame"] = time.time()

    app._display = display  # type: ignore[method-assign]

    async def auto_pilot(pilot: Any) -> None:
        import asyncio

        deadline = time.time() + 120
        while "first_frame" not in marks and time.time() < deadline:
            await asyncio.sleep(0.005)
        marks.setdefault("error", None)
        Path(args.out).write_text(json.dumps(marks))
        os._exit(0)

    app.run(headless=True, size=SIZE, auto_pilot=auto_pilot)


def _follow_child(args: Any, marks: dict[str, Any]) -> None:
    """A client console of node `--node` (it never hosts): record the wall time of the first
    frame whose swap log holds each event, by id."""
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.widgets.swap_log import SwapLog

    engine = Engine(args.settings, state_dir=args.state, actor="operator", node=args.node)
    app = OneiricApp(engine, may_host=False)
    seen: dict[int, float] = {}
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is None or app._batch_count or not app.is_running:
            return
        try:
            events = app.main.query_one(SwapLog).visible_events()
        except Exception:  # noqa: BLE001 - the main screen is not composed yet
            return
        now = time.time()
        for event in events[-50:]:
            if event.id is not None and event.id not in seen:
                seen[event.id] = now

    app._display = display  # type: ignore[method-assign]

    async def auto_pilot(pilot: Any) -> None:
        import asyncio

        await asyncio.sleep(1.0)  # attached and following
        Path(args.out + ".ready").write_text("1")
        await asyncio.sleep(args.seconds)
        Path(args.out).write_text(json.dumps({"seen": seen}))
        os._exit(0)

    app.run(headless=True, size=SIZE, auto_pilot=auto_pilot)


# -- set-up --------------------------------------------------------------------------------------

def fill_fleet(url: str, settings: Path, tmp: Path, nodes: int, keys: int) -> int:
    """`nodes` hosts' rows as each writes them (lease, node report, a lifecycle and a health
    snapshot per key), in one transaction per node; one key in ten serves another provider
    on the last node (drift). Returns the rows written."""
    from oneiric_core.engine import Engine
    from oneiric_core.store import HealthSnapshot, LifecycleSnapshot, StateStore

    engine = Engine(settings, state_dir=tmp / "planner", node="planner")
    try:
        refs = [ref for ref in engine.resolver.refs()][:keys]
        winners = {ref: engine.resolver.summary(ref).winner for ref in refs}
    finally:
        engine.close()
    written = 0
    now = time.time()
    for n in range(nodes):
        name = f"node-{n:02d}"
        store = StateStore(tmp / name / "state.sqlite", url=url, node=name)
        try:
            store.acquire_lease(10_000 + n, "bench")
            with store.batch():
                for i, ref in enumerate(refs):
                    winner = winners[ref]
                    provider = winner.provider if winner else "none"
                    if n == nodes - 1 and i % 10 == 0:
                        provider += "-drift"
                    store.put_lifecycle(LifecycleSnapshot(ref.domain.value, ref.key, "ready", provider, "builtin"))
                    store.put_health(HealthSnapshot(ref.domain.value, ref.key, provider, "ok", 1.0, "", now, now))
                    written += 2
            store.report_node(10_000 + n, "bench", {"serving": len(refs), "failing": 0, "paused": 0,
                                                    "misconfigured": 0, "manifests": {}, "at": now})
        finally:
            store.close()
    return written


def spawn(kind: str, root: Path, index: int, *extra: str) -> dict[str, Any]:
    out = root / f"{kind}-{index}.json"
    env = {**os.environ, SPAWN_ENV: repr(time.time())}
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=180)
    if not out.exists():
        raise RuntimeError(f"the {kind} child wrote nothing (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def event_latencies(url: str, settings: Path, root: Path, count: int,
                    every_s: float) -> tuple[list[float], list[float]]:
    """Write `count` events as node-00's host would, `every_s` apart, while a client console of
    node-00 runs in a child; the ms from each commit to the frame that shows it, and to the
    wake of a bare Listener of the store on another connection (the baseline)."""
    import threading

    from oneiric_core.domains import Domain
    from oneiric_core.events import Event, Severity
    from oneiric_core.store import StateStore

    out = root / "follow.json"
    seconds = 2.0 + count * every_s + 2.0
    env = {**os.environ, SPAWN_ENV: repr(time.time())}
    child = subprocess.Popen([sys.executable, __file__, "--child", "follow", "--out", str(out),
                              "--settings", str(settings), "--state", str(root / "follow-state"), "--node",
                              "node-00", "--seconds", str(seconds)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    ready = Path(str(out) + ".ready")
    deadline = time.time() + 120
    while not ready.exists():
        if time.time() > deadline or child.poll() is not None:
            raise RuntimeError(f"the console child did not start: {child.stderr.read() if child.stderr else ''}")
        time.sleep(0.05)
    writer = StateStore(root / "writer" / "state.sqlite", url=url, node="node-00")
    reader = StateStore(root / "reader" / "state.sqlite", url=url, node="reader")
    listener = reader.listen()
    woke: list[float] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            if listener.wait(0.2):
                woke.append(time.time())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    committed: dict[int, float] = {}
    try:
        for i in range(count):
            time.sleep(every_s)
            event = writer.append(Event("swap-complete", f"bench event {i}", Severity.INFO, domain=Domain.ADAPTER,
                                        key="cache", provider="memory", actor="bench"))
            committed[int(event.id or 0)] = time.time()
    finally:
        time.sleep(0.3)
        stop.set()
        thread.join()
        listener.close()
        reader.close()
        writer.close()
    child.wait(timeout=seconds + 60)
    seen = {int(k): v for k, v in json.loads(out.read_text())["seen"].items()}
    missing = [i for i in committed if i not in seen]
    if missing:
        raise RuntimeError(f"{len(missing)} of {count} events never reached the console's swap log")
    console = [(seen[i] - committed[i]) * 1000 for i in committed]
    bare = []
    for at in committed.values():  # each commit's first wake after it
        after = [w for w in woke if w >= at - 0.001]
        if after:
            bare.append(max(0.0, (min(after) - at) * 1000))
    return console, bare


# -- report --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return

    def extra(parser: Any) -> None:
        parser.add_argument("--nodes", type=int, default=50)
        parser.add_argument("--keys", type=int, default=200)
        parser.add_argument("--events", type=int, default=40)
        parser.add_argument("--runs", type=int, default=0, help="first-frame runs per app (default 5; 2 with --quick)")

    args = _common.parse_args(__doc__ or "", argv, extra=extra)
    runs = args.runs or (2 if args.quick else 5)
    if args.quick:  # the smoke test: that it runs and shows the matrix whole, not the figures
        args.nodes, args.keys = min(args.nodes, 5), min(args.keys, 20)
    print(f"bench/fleet_view.py -- {_common.environment_line()}")
    try:
        with _pg.bench_schema() as pg, tempfile.TemporaryDirectory(prefix="oneiric-fleet-view-") as tmp:
            report(args, Path(tmp), pg, runs)
    except _pg.NoServer as exc:
        print(f"SKIP: {exc}")


def report(args: Any, root: Path, pg: _pg.BenchSchema, runs: int) -> None:
    from console import generate_settings

    settings = root / "settings"
    keys_made, _ = generate_settings(settings, max(0, args.keys - 8) * 4)  # the demo's 8 keys and these
    with (settings / "app.yml").open("a") as app_yml:
        app_yml.write(f'\nstore:\n  url: "{pg.store_url}"\n')
    t0 = time.perf_counter()
    rows = fill_fleet(pg.store_url, settings, root, args.nodes, args.keys)
    print(f"PostgreSQL {pg.version} at {pg.server}; {args.nodes} nodes x {args.keys} keys "
          f"({rows:,} lifecycle and health rows, written in {time.perf_counter() - t0:.1f} s); "
          f"{runs} interleaved runs per app, each a fresh process\n")

    empty: list[float] = []
    fleet: list[float] = []
    shown_rows: list[int] = []
    phases: list[list[float]] = []
    for i in range(runs):
        e = spawn("empty", root, i)
        empty.append((e["first_frame"] - e["spawn"]) * 1000)
        f = spawn("fleet", root, i, "--settings", str(settings), "--state", str(root / f"viewer-{i}"))
        if f.get("first_frame") is None:
            raise RuntimeError(f"the fleet view showed no matrix within 120 s: {f}")
        fleet.append((f["first_frame"] - f["spawn"]) * 1000)
        phases.append([(f[b] - f[a]) * 1000 for a, b in PHASES])
        shown_rows.append(int(f["rows"]))
    base, med = _common.median(empty), _common.median(fleet)
    ratio = med / base
    print("first frame (ms from spawn)")
    phase = [f"{_common.median([p[i] for p in phases]):.0f}" for i in range(4)]
    print(_common.table(["app", "runs", "median ms", "min", "max", "ratio", "python up", "imports", "Engine()",
                         "to first frame"], [
        ["empty Textual app (Header+Footer)", runs, f"{base:.0f}", f"{min(empty):.0f}", f"{max(empty):.0f}", "1.00",
         "", "", "", ""],
        [f"fleet view, {args.nodes} nodes x {args.keys} keys", runs, f"{med:.0f}", f"{min(fleet):.0f}",
         f"{max(fleet):.0f}", f"{ratio:.2f}", *phase],
    ]))
    print()

    count = 10 if args.quick else args.events
    latencies, bare = event_latencies(pg.store_url, settings, root, count, every_s=0.25)
    p50, p95 = _common.median(latencies), _common.percentile(latencies, 95)
    b50, b95 = _common.median(bare), _common.percentile(bare, 95)
    print(f"an event node-00's host journals, to where another process sees it ({count} events, 250 ms apart)")
    print(_common.table(["reader", "events", "p50 ms", "p95 ms", "max ms", "p95 ratio"], [
        ["a bare store Listener (LISTEN/NOTIFY wake)", len(bare), f"{b50:.1f}", f"{b95:.1f}", f"{max(bare):.1f}",
         "1.00"],
        ["a client console of node-00: the frame showing it", count, f"{p50:.1f}", f"{p95:.1f}",
         f"{max(latencies):.1f}", f"{p95 / max(b95, 0.001):.1f}"]]))
    print()

    ok_rows = all(r == shown_rows[0] and r >= args.keys for r in shown_rows)
    frame_ok = ratio <= FRAME_RATIO_TARGET
    event_ok = p95 < EVENT_P95_TARGET_MS
    print(_common.verdict(ok_rows, f"the fleet view showed the whole matrix in every run: {shown_rows[0]} key rows "
                                   f"x {args.nodes} nodes", holds=ok_rows))
    print(_common.verdict(frame_ok, f"fleet view first frame at {args.nodes} nodes x {args.keys} keys: {med:.0f} ms "
                                    f"= {ratio:.2f}x the empty app ({base:.0f} ms); target <= {FRAME_RATIO_TARGET:g}x"))
    print(_common.verdict(event_ok, f"event on one node to another process's console: p95 {p95:.1f} ms "
                                    f"({p95 / max(b95, 0.001):.1f}x a bare store Listener's {b95:.1f} ms); target "
                                    f"< {EVENT_P95_TARGET_MS:g} ms"))
    _common.finish(ok_rows and frame_ok and event_ok, args.check)


if __name__ == "__main__":
    main()
