"""Benchmark: a settings file saved on disk to the proposal visible in the console (docs/architecture.md §11).

Target: "settings edit on disk to proposal visible: under 250 ms (watchdog, not polling)".

What is measured, in one run, each over the same number of saves (default 20, after one
warm-up save that is not counted):

  console        The real console: `OneiricApp(Engine(copy of ./settings))` driven by
                 `app.run_test(size=(120, 40))`, hosting (approvals.mode manual, as the demo
                 ships). Each save rewrites settings/adapters.yml with `Path.write_text` (a real
                 open/truncate/write/close, as most editors do), alternating adapter/cache's
                 selection between `sqlite` and `memory-large`, neither of which serves
                 (`memory` does), so every save supersedes the previous proposal and makes a
                 new one. Timed from just before the write to
                   pane:  the approvals pane (ApprovalsTable.sync, wrapped on the instance)
                          taking a new row for that proposal, and
                   frame: the first screen update Textual produces after that (App._display
                          wrapped on the instance, as bench/console.py does), i.e. on screen.
                 The engine part of the same saves is reported too: write -> the
                 `swap-requested` event (published right after the proposal is written to the
                 store), from a bus listener.
  engine only    The same saves against a bare host Engine with no console: write -> the
                 proposal in the store (the `swap-requested` event).
  watchdog       The baseline: a bare watchdog Observer on another copy, write -> the
                 handler seeing the file's close-after-write event on the observer thread.
                 The ratios divide by its median.

The floor by design: the watcher waits for QUIET_S (50 ms) of quiet after a save before it
reloads (an editor's save is several events; an empty, truncated file must never be read
as "defaults"), and the console batches engine events for EVENT_BATCH_S (50 ms) before it
refreshes its panes.

Usage:  .venv/bin/python bench/watcher.py [--quick] [--check] [--saves N] [--keep]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 250.0
PROVIDERS = ("sqlite", "memory-large")  # neither serves in the demo (memory does)
SIZE = (120, 40)
POLL_S = 0.002
DEADLINE_S = 10.0


def extra_args(parser) -> None:
    parser.add_argument("--saves", type=int, default=None, help="measured saves per phase (default 20, --quick 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")


def settings_copy(target: Path) -> Path:
    shutil.copytree(REPO / "settings", target)
    return target


def adapters_selecting(settings: Path, provider: str) -> str:
    text = (REPO / "settings" / "adapters.yml").read_text()
    if "  cache: memory\n" not in text:
        raise SystemExit("bench/watcher.py: settings/adapters.yml no longer selects `cache: memory`")
    return text.replace("  cache: memory\n", f"  cache: {provider}\n")


async def wait_for(predicate, what: str, poll_s: float = POLL_S) -> Any:
    deadline = time.perf_counter() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench/watcher.py: timed out after {DEADLINE_S:g}s waiting for {what}")
        await asyncio.sleep(poll_s)


# -- baseline: raw watchdog event latency ---------------------------------------------------------

async def watchdog_phase(root: Path, saves: int) -> list[float]:
    from watchdog.events import FileClosedEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    directory = settings_copy(root / "watchdog" / "settings")
    target = directory / "adapters.yml"
    seen: list[float] = []
    arrived = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_closed(self, event) -> None:
            if os.fsdecode(event.src_path) == str(target):
                seen.append(time.perf_counter())
                arrived.set()

    observer = Observer()
    observer.schedule(Handler(), str(directory), event_filter=[FileClosedEvent])
    observer.start()
    out = []
    try:
        for i in range(saves + 1):
            arrived.clear()
            text = adapters_selecting(directory, PROVIDERS[i % 2])
            t0 = time.perf_counter()
            target.write_text(text)
            if not await asyncio.to_thread(arrived.wait, DEADLINE_S):
                raise SystemExit("bench/watcher.py: watchdog never reported the write")
            if i:
                out.append((seen[-1] - t0) * 1000)
            await asyncio.sleep(0.02)
    finally:
        observer.stop()
        observer.join()
    return out


# -- engine only ----------------------------------------------------------------------------------

def requested_times(engine) -> list[float]:
    """perf_counter of each `swap-requested` event: the proposal has just been stored."""
    times: list[float] = []
    engine.bus.add_listener(lambda e: times.append(time.perf_counter()) if e.kind == "swap-requested" else None)
    return times


async def engine_phase(root: Path, saves: int) -> list[float]:
    from oneiric_core.engine import Engine

    settings = settings_copy(root / "engine" / "settings")
    engine = Engine(settings, state_dir=root / "engine" / "state", actor="bench")
    await engine.start()
    times = requested_times(engine)
    out = []
    try:
        if not engine.watcher_status().alive:
            raise SystemExit("bench/watcher.py: the settings watcher is not alive: "
                             f"{engine.watcher_status().describe()}")
        for i in range(saves + 1):
            seen = len(times)
            text = adapters_selecting(settings, PROVIDERS[i % 2])
            t0 = time.perf_counter()
            (settings / "adapters.yml").write_text(text)
            await wait_for(lambda seen=seen: len(times) > seen, "the proposal in the store")
            if i:
                out.append((times[seen] - t0) * 1000)
    finally:
        await engine.stop()
        engine.close()
    return out


# -- the console ---------------------------------------------------------------------------------

async def console_phase(root: Path, saves: int) -> dict[str, list[float]]:
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.widgets.approvals import ApprovalsTable

    settings = settings_copy(root / "console" / "settings")
    engine = Engine(settings, state_dir=root / "console" / "state", actor="bench")
    app = OneiricApp(engine)
    out: dict[str, list[float]] = {"pane": [], "frame": [], "store": []}
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.perf_counter() + 30.0
        while not (app.mode == "host" and app.statuses and engine.watcher is not None
                   and all(s.state == "ready" for s in app.statuses.values())):
            if time.perf_counter() > deadline:
                raise SystemExit(f"bench/watcher.py: the console did not get ready (mode {app.mode})")
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        if not engine.watcher_status().alive:
            raise SystemExit("bench/watcher.py: the settings watcher is not alive: "
                             f"{engine.watcher_status().describe()}")
        table = app.main.query_one(ApprovalsTable)
        times = requested_times(engine)
        frames = _common.record_frames(app)

        # When the pane gets the row: ApprovalsTable.sync wrapped on the instance, so nothing
        # polls the app while it works (a busy poller changes when Textual paints).
        syncs: list[tuple[float, list[tuple[int | None, str]]]] = []
        original_sync = table.sync

        def sync(pending, **options: Any) -> None:
            original_sync(pending, **options)
            syncs.append((time.perf_counter(), [(p.id, p.to_provider) for p in pending]))

        table.sync = sync  # type: ignore[method-assign]

        def pane_time(before: set[Any], provider: str) -> float | None:
            return next((t for t, rows in syncs
                         if any(pid not in before and to == provider for pid, to in rows)), None)

        for i in range(saves + 1):
            provider = PROVIDERS[i % 2]
            before = {int(key.value) for key in table.rows}
            seen = len(times)
            syncs.clear()
            frames.clear()
            text = adapters_selecting(settings, provider)
            t0 = time.perf_counter()
            (settings / "adapters.yml").write_text(text)
            t_pane = await wait_for(lambda before=before, provider=provider: pane_time(before, provider),
                                    f"the proposal to {provider} in the approvals pane", poll_s=0.05)
            frame = await wait_for(lambda t_pane=t_pane: next((f for f in frames if f >= t_pane), None),
                                   "the next frame",
                                   poll_s=0.05)
            if i:
                out["pane"].append((t_pane - t0) * 1000)
                out["frame"].append((frame - t0) * 1000)
                out["store"].append((times[seen] - t0) * 1000)
            await pilot.pause(0.2)
    return out


# -- report --------------------------------------------------------------------------------------

async def run(args) -> None:
    from oneiric_core.watcher import QUIET_S
    from oneiric_tui.app import EVENT_BATCH_S

    saves = args.saves or (4 if args.quick else 20)
    root = Path(tempfile.mkdtemp(prefix="oneiric-bench-watcher-"))
    try:
        print(f"bench/watcher.py -- {_common.environment_line()}; {os.cpu_count()} CPUs")
        print(f"{saves} measured saves per phase (+1 warm-up) of settings/adapters.yml, alternating "
              f"adapter/cache between {' and '.join(PROVIDERS)}; watcher quiet window {QUIET_S * 1000:.0f} ms, "
              f"console event batch {EVENT_BATCH_S * 1000:.0f} ms")
        print()
        base = await watchdog_phase(root, saves)
        engine_only = await engine_phase(root, saves)
        console = await console_phase(root, saves)
    finally:
        if args.keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)

    base_med = _common.median(base)

    def row(label: str, values: list[float]) -> list[Any]:
        med = _common.median(values)
        return [label, len(values), med, _common.percentile(values, 95), max(values), med / base_med]

    rows = [
        row("console: write -> approvals pane row", console["pane"]),
        row("console: write -> next frame with it", console["frame"]),
        row("console: write -> proposal stored", console["store"]),
        row("engine only: write -> proposal stored", engine_only),
        row("watchdog: write -> close event (baseline)", base),
    ]
    print(_common.table(["measure", "saves", "median ms", "p95 ms", "max ms", "x watchdog"], rows))
    print()
    pane, frame, store = (_common.median(console[k]) for k in ("pane", "frame", "store"))
    print(f"of the {frame:.0f} ms to the frame: {store:.0f} ms until the proposal is stored (the quiet window "
          f"is {QUIET_S * 1000:.0f} of them), {pane - store:.0f} ms until the pane has the row, "
          f"{frame - pane:.0f} ms until the frame")
    ok = frame < TARGET_MS
    print(_common.verdict(ok, f"settings save to proposal visible in the console, median < {TARGET_MS:g} ms: "
                              f"{frame:.0f} ms to the frame ({pane:.0f} ms to the pane; engine only "
                              f"{_common.median(engine_only):.0f} ms; watchdog itself {base_med:.2f} ms)"))
    _common.finish(ok, args.check)


def main(argv: list[str] | None = None) -> None:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=extra_args)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
