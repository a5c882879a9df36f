"""Benchmark: the machinery overhead of a swap (docs/architecture.md §11).

Target: "swap machinery overhead (excluding the provider's own start and health time):
under 1 ms median".

A real Engine hosts a temporary copy of settings/ (health.interval_s raised to 3600 so the
monitor never probes during the run) with its state -- the SQLite journal, lifecycle and
health snapshots -- in a temporary directory on disk, exactly as a host writes them. It
swaps adapter/cache back and forth between `memory` (built-in) and `memory-large`
(settings/adapters.yml), both `cache_memory:create`, after a warm-up.

Per swap it records the SwapResult fields and, by wrapping the lifecycle's phase methods
and the store's write methods of this engine instance (no engine file is changed):

  wall           time around `await engine._swap_now(...)`, what a caller waits
  build          LifecycleManager._build: load the factory, call it in a worker thread, start()
  check          LifecycleManager._check: health()
  store writes   StateStore.append / put_lifecycle / put_health calls and their time

and two overheads:

  overhead (fields) = total_ms - activation_ms - health_ms      (the definition in §11)
  overhead (wall)   = wall - build - check

They differ because SwapResult.activation_ms starts its clock *before* the swap-started
journal write and the `activating` snapshot write, and total_ms stops *before* the final
snapshot write, the swap-complete journal write and telemetry, so the fields-based figure
leaves part of the machinery out, and the wall-based one leaves out the worker-thread hop that
`build` includes. The verdict uses what a caller waits beyond the provider's own work: the
median wall time minus the bare provider's median create+start+health+stop (measured
interleaved in the same run).

The baseline, measured in the same run: the bare provider without the engine
(`cache_memory.create(settings)`, `await start()`, `await health()`, `await stop()`), and
the same with the factory called through a worker thread as the lifecycle does. A second
engine (its own state dir) with the store writes replaced by no-ops shows what the
journal costs. The three are interleaved swap by swap, so load drift on a shared machine
hits them alike.

With `--exporter otlp` (or `console`) a fourth engine, interleaved with the others, has
app.yml `telemetry.exporter` set to it (otlp: to a local OTLP/HTTP endpoint in this process
that answers 200; console: to /dev/null), so spans, log records and exported metrics are
made for every swap: its overhead beside the default's is what exporting telemetry costs. The
verdict stays the default's (`exporter: none`, where no span or log record is made).

Usage:  .venv/bin/python bench/swap.py [--quick] [--check] [--swaps N] [--state-dir DIR] [--exporter otlp]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

from oneiric_core.domains import Domain  # noqa: E402
from oneiric_core.engine import Engine  # noqa: E402
from oneiric_core.lifecycle import SwapOutcome  # noqa: E402
from oneiric_core.providers import cache_memory  # noqa: E402

TARGET_MS = 1.0
REPO = Path(__file__).resolve().parent.parent
PROVIDERS = ("memory", "memory-large")
STORE_WRITES = ("append", "put_lifecycle", "put_health")


def extra_args(parser) -> None:
    parser.add_argument("--swaps", type=int, default=None, help="measured swaps (default 300, --quick 20)")
    parser.add_argument("--state-dir", default=None,
                        help="parent directory for the temporary settings and state (default: the system temp dir)")
    parser.add_argument("--exporter", choices=("otlp", "console"), default=None,
                        help="also run an engine exporting telemetry this way, to show what it costs")


def prepare_settings(root: Path, telemetry: str | None = None) -> Path:
    """Copy settings/ under `root` and raise health.interval_s so the monitor stays out of the
    way; `telemetry` replaces the demo's telemetry section (`exporter: none`)."""
    settings = root / "settings"
    shutil.copytree(REPO / "settings", settings)
    app = settings / "app.yml"
    # health.interval_s only (remote sources have an interval_s too, further indented)
    text, count = re.subn(r"(?m)^(health:\n(?:[ \t]+.*\n|[ \t]*#.*\n|\n)*?[ \t]+interval_s:[ \t]*)[0-9.]+",
                          r"\g<1>3600", app.read_text())
    if count != 1:
        raise SystemExit(f"bench/swap.py: could not find health.interval_s in {app}")
    if telemetry is not None:
        text, count = re.subn(r"(?m)^telemetry:\n(?:[ \t]+.*\n)*", telemetry, text)
        if count != 1:
            raise SystemExit(f"bench/swap.py: could not find the telemetry section in {app}")
    app.write_text(text)
    return settings


class Collector:
    """An OTLP/HTTP endpoint that takes every export (200, nothing decoded), in a thread."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Probe:
    """Accumulates time and calls of wrapped callables, reset before each swap."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def reset(self) -> None:
        self.ms.clear()
        self.calls.clear()

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap_sync(self, names: tuple[str, ...], fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ms = (time.perf_counter() - t0) * 1e3
                for name in names:
                    self.add(name, ms)
        return wrapper

    def wrap_async(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.add(name, (time.perf_counter() - t0) * 1e3)
        return wrapper


class EngineRun:
    """A started Engine on its own temporary settings and state dir, swapped one step at a time."""

    def __init__(self, root: Path, *, stub_store: bool, telemetry: str | None = None) -> None:
        self.engine = Engine(prepare_settings(root, telemetry), state_dir=root / "state", read_only=False,
                             actor="bench")
        self.stub_store = stub_store
        self.probe = Probe()
        self.rows: list[dict[str, float]] = []
        self.ref = self.engine.ref(Domain.ADAPTER, "cache")
        self.current: str | None = None

    async def start(self) -> None:
        engine, probe = self.engine, self.probe
        await engine.start()
        store, lifecycle = engine.store, engine.lifecycle
        for name in STORE_WRITES:
            real = getattr(store, name)
            setattr(store, name, probe.wrap_sync(("store", f"store.{name}"),
                                                 (lambda *a, **k: None) if self.stub_store else real))
        lifecycle._build = probe.wrap_async("build", lifecycle._build)
        lifecycle._check = probe.wrap_async("check", lifecycle._check)
        lifecycle._stop = probe.wrap_async("stop", lifecycle._stop)
        self.current = lifecycle.slot(self.ref).provider
        if self.current not in PROVIDERS:
            raise SystemExit(f"bench/swap.py: adapter/cache serves {self.current!r}, expected one of {PROVIDERS}")

    async def step(self, record: bool) -> None:
        target = PROVIDERS[1] if self.current == PROVIDERS[0] else PROVIDERS[0]
        probe = self.probe
        probe.reset()
        t0 = time.perf_counter()
        result = await self.engine._swap_now(Domain.ADAPTER, "cache", target)
        wall = (time.perf_counter() - t0) * 1e3
        if result.outcome != SwapOutcome.COMPLETE:
            raise SystemExit(f"bench/swap.py: swap to {target} ended {result.outcome}: {result.reason}")
        self.current = target
        if not record:
            return
        build, check = probe.ms.get("build", 0.0), probe.ms.get("check", 0.0)
        self.rows.append({
            "wall": wall,
            "total": result.total_ms,
            "activation": result.activation_ms,
            "health": result.health_ms,
            "cleanup": result.cleanup_ms,
            "overhead_fields": result.total_ms - result.activation_ms - result.health_ms,
            "overhead_wall": wall - build - check,
            "build": build,
            "check": check,
            "stop": probe.ms.get("stop", 0.0),
            "store": probe.ms.get("store", 0.0),
            "store_n": float(probe.calls.get("store", 0)),
            **{f"store.{name}": probe.ms.get(f"store.{name}", 0.0) for name in STORE_WRITES},
            **{f"store.{name}.n": float(probe.calls.get(f"store.{name}", 0)) for name in STORE_WRITES},
            "activation_not_build": result.activation_ms - build,
            "outside_total": wall - result.total_ms,
        })

    async def close(self) -> None:
        try:
            await self.engine.stop()
        finally:
            self.engine.close()


class BareRun:
    """The provider's own cost with no engine: create, start, health, stop -- and the factory
    through a worker thread + start, as the lifecycle calls a sync factory."""

    def __init__(self, state_dir: Path) -> None:
        self.settings = [
            {"max_entries": 1024, "state_dir": str(state_dir)},    # memory (built-in)
            {"max_entries": 100000, "state_dir": str(state_dir)},  # memory-large (settings/adapters.yml)
        ]
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.rows: list[dict[str, float]] = []
        self.index = 0

    async def step(self, record: bool) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings[self.index % 2]
        self.index += 1
        t0 = time.perf_counter()
        obj = cache_memory.create(settings)
        t1 = time.perf_counter()
        await obj.start()
        t2 = time.perf_counter()
        health = await obj.health()
        t3 = time.perf_counter()
        await obj.stop()
        t4 = time.perf_counter()
        assert health.healthy, health
        t5 = time.perf_counter()
        obj = await loop.run_in_executor(self.pool, functools.partial(cache_memory.create, settings))
        await obj.start()
        t6 = time.perf_counter()
        await obj.stop()
        if record:
            self.rows.append({
                "create": (t1 - t0) * 1e3, "start": (t2 - t1) * 1e3,
                "create_start": (t2 - t0) * 1e3, "health": (t3 - t2) * 1e3, "stop": (t4 - t3) * 1e3,
                "all": (t4 - t0) * 1e3, "threaded_create_start": (t6 - t5) * 1e3,
            })

    async def close(self) -> None:
        self.pool.shutdown(wait=True)


async def measure(tmp: Path, swaps: int, warmup: int, exporter: str | None = None) -> tuple[list, list, list, list]:
    """Interleaved, one step each per round, so load drift on a shared machine hits them all alike."""
    real = EngineRun(tmp / "real", stub_store=False)
    stub = EngineRun(tmp / "stub", stub_store=True)
    bare = BareRun(tmp / "bare")
    runs: list[Any] = [real, stub, bare]
    collector = Collector() if exporter == "otlp" else None
    traced = None
    if exporter is not None:
        section = (f"telemetry:\n  exporter: otlp\n  endpoint: {collector.url}\n" if collector is not None
                   else "telemetry:\n  exporter: console\n")
        traced = EngineRun(tmp / "traced", stub_store=False, telemetry=section)
        runs.append(traced)
    stdout = sys.stdout
    try:
        await real.start()
        await stub.start()
        if traced is not None:
            if exporter == "console":
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the console exporter binds it at start
            await traced.start()
        for index in range(warmup + swaps):
            for run_ in runs:
                await run_.step(record=index >= warmup)
    finally:
        for run_ in runs:
            await run_.close()
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout
        if collector is not None:
            collector.close()
    return real.rows, stub.rows, bare.rows, traced.rows if traced is not None else []


def stats(rows: list[dict[str, float]], name: str) -> tuple[float, float]:
    values = [r[name] for r in rows]
    return _common.median(values), _common.percentile(values, 95)


async def run(args) -> int:
    swaps = args.swaps or (20 if args.quick else 300)
    warmup = 3 if args.quick else 30
    print(f"bench/swap.py -- {_common.environment_line()}")
    print(f"adapter/cache swapped {swaps} times between {PROVIDERS[0]} and {PROVIDERS[1]} "
          f"after {warmup} warm-up swaps; journal in SQLite on disk")
    if args.quick:
        print("(--quick: few swaps, the figures are not meaningful)")
    print()

    parent = Path(args.state_dir) if args.state_dir else None
    with tempfile.TemporaryDirectory(prefix="oneiric-bench-", dir=parent) as tmp:
        tmp_path = Path(tmp)
        real, stub, bare, traced = await measure(tmp_path, swaps, warmup, args.exporter)
        db = tmp_path / "real" / "state" / "state.sqlite"
        print(f"state store: {db.parent} ({_fs_note(db)})")
        print()

    def line(label: str, rows, name: str) -> list[Any]:
        med, p95 = stats(rows, name)
        return [label, med, p95]

    table_rows = [
        line("engine._swap_now() wall (await engine.swap)", real, "wall"),
        line("  SwapResult.total_ms", real, "total"),
        line("  SwapResult.activation_ms", real, "activation"),
        line("  SwapResult.health_ms", real, "health"),
        line("  SwapResult.cleanup_ms", real, "cleanup"),
        line("  build (_build: factory in thread + start)", real, "build"),
        line("  check (_check: health)", real, "check"),
        line("  stop (_stop, inside cleanup)", real, "stop"),
        line("  store writes (all, per swap)", real, "store"),
        *(line(f"    {name} x{_common.median([r[f'store.{name}.n'] for r in real]):.0f}", real, f"store.{name}")
          for name in STORE_WRITES),
        line("  activation_ms not spent in build", real, "activation_not_build"),
        line("  wall not inside total_ms", real, "outside_total"),
        line("overhead (fields) = total - activation - health", real, "overhead_fields"),
        line("overhead (wall) = wall - build - check", real, "overhead_wall"),
        line("engine, store writes stubbed: wall", stub, "wall"),
        line("engine, store writes stubbed: overhead (wall)", stub, "overhead_wall"),
        line("engine, store writes stubbed: overhead (fields)", stub, "overhead_fields"),
        *([line(f"engine, telemetry exporter {args.exporter}: wall", traced, "wall"),
           line(f"engine, telemetry exporter {args.exporter}: overhead (wall)", traced, "overhead_wall")]
          if traced else []),
        line("bare provider: create()", bare, "create"),
        line("bare provider: start()", bare, "start"),
        line("bare provider: health()", bare, "health"),
        line("bare provider: stop()", bare, "stop"),
        line("bare provider: create+start+health+stop", bare, "all"),
        line("bare provider: create in worker thread + start", bare, "threaded_create_start"),
    ]
    print(_common.table(["phase", "median ms", "p95 ms"], table_rows))
    print()

    wall_med, _ = stats(real, "wall")
    bare_med, _ = stats(bare, "all")
    over_wall, _ = stats(real, "overhead_wall")
    over_fields, _ = stats(real, "overhead_fields")
    store_med, _ = stats(real, "store")
    writes = _common.median([r["store_n"] for r in real])
    stub_over, _ = stats(stub, "overhead_wall")
    print(f"a swap waits {wall_med:.3f} ms (median) where the bare provider's create+start+health+stop "
          f"takes {bare_med:.3f} ms: {wall_med / bare_med:.0f}x, the machinery adds {wall_med - bare_med:.3f} ms")
    print(f"store: {writes:.0f} SQLite write transactions per swap, {store_med:.3f} ms median = "
          f"{100 * store_med / over_wall:.0f}% of the wall overhead; with the writes stubbed the overhead is "
          f"{stub_over:.3f} ms")
    if traced:
        traced_over, _ = stats(traced, "overhead_wall")
        print(f"telemetry exporter {args.exporter} (spans, log records, exported metrics): overhead "
              f"{traced_over:.3f} ms, {traced_over - over_wall:+.3f} ms against exporter none")
    print()

    machinery = wall_med - bare_med  # what a caller waits beyond the provider's own work, thread hop included
    ok = machinery < TARGET_MS
    print(_common.verdict(ok, f"swap machinery overhead median < {TARGET_MS:g} ms: {machinery:.3f} ms (median wall "
                              f"- the bare provider's create+start+health+stop); wall - build - check gives "
                              f"{over_wall:.3f} ms, the SwapResult fields {over_fields:.3f} ms"))
    _common.finish(ok, args.check)
    return 0


def _fs_note(path: Path) -> str:
    """The filesystem holding `path` (from /proc/mounts; tmpfs would hide real write costs)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "filesystem unknown"
    text = str(path.resolve())
    matches = [(mnt, kind) for mnt, kind in mounts if text == mnt or text.startswith(mnt.rstrip("/") + "/")]
    if not matches:
        return "filesystem unknown"
    mnt, kind = max(matches, key=lambda m: len(m[0]))
    return f"filesystem {kind} at {mnt}"


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=extra_args)
    return asyncio.run(run(args))


if __name__ == "__main__":
    main()
