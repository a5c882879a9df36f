"""Benchmark: the console's performance targets (cold start, event storm, memory).

Targets, each judged against a baseline measured in the same run:

  cold start, demo          first frame of the real console on the demo settings within 2x
                            of an empty Textual app (Header + Footer) started the same way
  cold start, 10,000        the same with 10,000 generated candidates: within 3x
  event storm               demo console (host mode, 120x40) while the engine journals 500
                            events/s for 10 s and a Pilot presses j/k every 50 ms: every key
                            press handled in under 100 ms; the swap log stays bounded and
                            keeps up (the last event emitted is in the log at the end).
                            "Bounded" is read after the storm from what the log holds, not
                            from what its add() returns (which trims first): events held
                            <= max_lines, its screen-row index no longer than the rows those
                            events fold into, the dedupe set <= 2x its cap, the newest storm
                            events kept in order (a trim that misses any of them FAILs)
  memory                    RSS of the console with 10,000 candidates after its first frame
                            and after activation: under 150 MB (the empty app is the baseline)
  scale (--scale only)      50,000 generated candidates (12,500 keys): the console and the
                            headless host (`oneiric run`'s start: oneiric_core.host) activate
                            the same settings, interleaved fresh processes. Activation =
                            engine.start() from call to return (the console: until its app has
                            seen it). Console activation within 1.5x of the headless host's;
                            the console's worst loop stall during activation under 100 ms
                            (also shown as a ratio to the headless host's); console RSS 1 s
                            after activation under 250 MB. `make bench` runs it as
                            bench/console_scale.py; ~2-3 min with the default 2 runs.

Cold start. Every run is a fresh subprocess: `python bench/console.py --child KIND ...`,
after one uncounted warm-up run that writes the project's .pyc files (textual's come from
pip), with PYTHONDONTWRITEBYTECODE removed from the children's environment.
The parent stores `time.time()` in ONEIRIC_BENCH_SPAWN just before it spawns the child,
so "first frame" counts interpreter start-up, imports, building the Engine (reading and
validating the settings), building the app and painting, exactly what an operator waits
for after typing `oneiric console`. The child runs the app with
`app.run(headless=True, size=(120, 40), auto_pilot=...)`.

How the first frame is detected: Textual hands every screen update to `App._display(screen,
update)`; on a terminal that is where the update becomes escape sequences and is written.
Headless, `_display` returns before that step, so the child wraps `_display` on the app
*instance* (no subclass: a subclass would change where CSS_PATH is resolved) and, on the
first update that (a) is not None, (b) is not suppressed by `batch_update()` and (c) is for
the app's own screen (the console's MainScreen; the empty app's default screen), renders
it to terminal output itself (`update.render_segments(app.console)`, the work a terminal
run does) and takes the time. That is the first frame a terminal would show. `_display`
is private Textual API, which is acceptable here because textual is pinned (==8.2.8); if a
Textual upgrade stops calling it, the child times out with a clear error instead of
reporting a wrong figure. After the first frame a console child keeps running until the
engine reports the host started (all activations done, up to 60 s), records RSS again,
and exits with os._exit (stopping thousands of providers is not part of a cold start, and
the state directory is a throwaway).

Runs are interleaved (round 1: empty, demo, 10k; round 2: ...), each in a fresh state
directory, so a noisy moment of a shared machine hits all variants alike. One extra run of
the 10,000-candidate console with `autostart=False` (providers not started) shows how much
of its first frame waits for activation.

The 10,000 candidates: the demo settings copied, plus 2,500 generated keys x 4 candidates
spread round-robin over the six domain files, every one built by a cheap built-in factory
(`cache_memory:create` or `compress:create_gzip`) under a unique provider name, priorities
0-3 so each key has one winner. The engine activates the 2,500 winners (plus the 8 demo
keys) when the console starts it, as it would in production.

Event storm. In this process: `OneiricApp.run_test(size=(120, 40))` on a copy of the demo,
wait until it hosts and every component is ready, then (1) an idle baseline: j/k presses
every 50 ms with no extra events, and (2) the storm: an asyncio task on the app's loop calls
`engine.emit(Event(...))` on a schedule of 500 events/s (8 in 10 `health-probed`, 1
`activity-changed`, 1 `swap-complete`, over the demo keys: the kinds the console treats
differently) while the presses go on. Each press is started as its own task every 50 ms
(`pilot.press` waits for the app to go idle, which under a storm could stretch the
cadence), and its latency is the time from the `pilot.press` call to the tree's
`action_cursor_down` / `action_cursor_up` running for that key (wrapped on the widget
instance); "key to frame" is from the call to the next screen update after that. COLUMNS is
set to the terminal width so Rich wraps log lines as it would on a real 120-column
terminal (headless, it would wrap at 80).

Usage:  .venv/bin/python bench/console.py [--quick] [--check] [--runs N] [--components N]
                                          [--storm-seconds S] [--storm-rate R] [--hold S] [--keep]
        .venv/bin/python bench/console.py --scale [--quick] [--check] [--runs N] [--components N]
Exits 0 (it is a report) unless --check is given and a target FAILs.
"""

from __future__ import annotations

import time

_WALL_AT_START = time.time()  # a child's "interpreter is up" mark: before any other import

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

SIZE = (120, 40)
SPAWN_ENV = "ONEIRIC_BENCH_SPAWN"
ACTIVATION_WAIT_S = 60.0
SETTLE_S = 1.0  # after activation: let the console absorb the last batches before reading RSS

DEMO_RATIO_TARGET = 2.0
LARGE_RATIO_TARGET = 3.0
KEY_TARGET_MS = 100.0
RSS_TARGET_MB = 150.0
KEY_PERIOD_S = 0.05
SCALE_COMPONENTS = 50_000
SCALE_RATIO_TARGET = 1.5  # console activation / headless host activation
SCALE_STALL_MS = 100.0
SCALE_RSS_MB = 250.0

GEN_FACTORIES = ("oneiric_core.providers.cache_memory:create", "oneiric_core.providers.compress:create_gzip")
GEN_PER_KEY = 4


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# =========================================================================================
# child: one cold start, reported as JSON
# =========================================================================================

def _child_main(argv: list[str]) -> None:
    import argparse
    import asyncio

    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["empty", "console", "headless"])
    parser.add_argument("--settings")
    parser.add_argument("--state")
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-autostart", action="store_true")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="after activation, keep hosting this long and read RSS again")
    args = parser.parse_args(argv)
    marks: dict[str, object] = {"spawn": float(os.environ[SPAWN_ENV]), "first_statement": _WALL_AT_START}
    autostart = not args.no_autostart

    engine = None
    if args.kind == "headless":
        _headless_child(args, marks)
        return
    if args.kind == "empty":
        from textual.app import App, ComposeResult
        from textual.widgets import Footer, Header

        marks["imported"] = time.time()

        class EmptyApp(App):
            def compose(self) -> ComposeResult:
                yield Header()
                yield Footer()

        marks["engine_built"] = time.time()
        app = EmptyApp()

        def is_target(screen) -> bool:
            return screen is app.screen
    else:
        from oneiric_core.engine import Engine
        from oneiric_tui.app import OneiricApp
        from oneiric_tui.main_screen import MainScreen

        marks["imported"] = time.time()
        engine = Engine(args.settings, state_dir=args.state, actor="operator")
        marks["engine_built"] = time.time()
        marks["keys"] = len(engine.resolver.refs())
        marks["candidates"] = len(engine.registry)
        app = OneiricApp(engine, autostart=autostart)
        _mark_start(engine, marks)

        def is_target(screen) -> bool:
            return isinstance(screen, MainScreen)

    original_display = app._display

    def display(screen, renderable) -> None:
        original_display(screen, renderable)
        if "first_frame" in marks or renderable is None or app._batch_count or not is_target(screen):
            return
        # Headless Textual skips turning the update into terminal output: do it, as a terminal would.
        if hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)
        else:
            app.console.render(renderable)
        marks["first_frame"] = time.time()
        marks["rss_first_frame"] = rss_mb()
        if engine is not None:
            marks["serving_at_first_frame"] = sum(1 for s in engine.lifecycle.slots() if s.current is not None)

    app._display = display  # type: ignore[method-assign]

    async def auto_pilot(pilot) -> None:
        # Poll every 5 ms; the longest gap between polls is the longest time the event loop
        # was blocked (from app ready to the end), which a provider's health gate feels too.
        loop_start = last = time.perf_counter()
        max_gap = 0.0
        deadline = loop_start + 300.0

        def done() -> bool:
            if "first_frame" not in marks:
                return False
            if engine is None or not autostart:
                return True
            return app.mode != "starting" or time.perf_counter() > deadline_activation

        deadline_activation = float("inf")
        activation_gap = 0.0  # the worst gap while engine.start() runs (activation)
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            max_gap = max(max_gap, now - last)
            began = marks.get("start_called_pc")
            if isinstance(began, float):
                activation_gap = max(activation_gap, now - max(last, began))
            last = now
            if "first_frame" in marks and deadline_activation == float("inf"):
                deadline_activation = now + ACTIVATION_WAIT_S
            if done():
                break
            if now > deadline:
                marks["error"] = "no first frame within 300 s (is App._display still called?)"
                break
        if engine is not None and autostart and "first_frame" in marks:
            marks["activated"] = time.time()
            marks["mode"] = app.mode
            marks["max_loop_stall_ms"] = max_gap * 1000
            marks["activation_stall_ms"] = activation_gap * 1000
            marks["activated_pc"] = time.perf_counter()
            await asyncio.sleep(SETTLE_S)
            marks["rss_after_activation"] = rss_mb()
            marks["not_ready"] = sorted(f"{s.ref}: {s.state} {s.last_error or ''}".strip()
                                        for s in engine.components() if s.state != "ready")
            if args.hold > 0:
                await asyncio.sleep(args.hold)
                marks["rss_after_hold"] = rss_mb()
                marks["hold_s"] = args.hold
        with open(args.out, "w") as fh:
            json.dump(marks, fh)
        sys.stdout.flush()
        os._exit(0)

    marks["app_run"] = time.time()
    app.run(headless=True, size=SIZE, auto_pilot=auto_pilot)
    # Only reached when the app ended before the auto pilot reported.
    marks.setdefault("error", f"app exited before the first frame (return code {app.return_code})")
    with open(args.out, "w") as fh:
        json.dump(marks, fh)


def _mark_start(engine, marks: dict[str, object]) -> None:
    """Record when engine.start() (the host's activation of every winner) is called and
    returns, on the instance: the same marks in the console and the headless child."""
    original = engine.start

    async def start() -> None:
        marks["start_called"], marks["start_called_pc"] = time.time(), time.perf_counter()
        await original()
        marks["start_done"], marks["start_done_pc"] = time.time(), time.perf_counter()

    engine.start = start


def _headless_child(args, marks: dict[str, object]) -> None:
    """`oneiric run`'s start on the same settings (oneiric_core.host.run_host: every journal
    event written as a JSON line, here to /dev/null), timed like the console: engine.start()
    from call to return, the loop polled every 5 ms for its worst gap meanwhile."""
    import asyncio

    from oneiric_core.engine import Engine
    from oneiric_core.host_output import LineWriter
    from oneiric_core.provider_calls import contain_task_exits

    marks["imported"] = time.time()
    out = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the child)
    engine = Engine(args.settings, state_dir=args.state, actor="operator")
    engine.bus.add_listener(LineWriter(out, prefixed=False).event)
    marks["engine_built"] = time.time()
    marks["keys"] = len(engine.resolver.refs())
    marks["candidates"] = len(engine.registry)
    _mark_start(engine, marks)

    async def main() -> None:
        contain_task_exits(asyncio.get_running_loop())
        gap = [0.0]
        done = asyncio.Event()

        async def poll() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gap[0] = max(gap[0], now - last)
                last = now

        poller = asyncio.create_task(poll())
        await engine.start()
        done.set()
        await poller
        marks["activated_pc"] = time.perf_counter()
        marks["activation_stall_ms"] = gap[0] * 1000
        await asyncio.sleep(SETTLE_S)
        marks["rss_after_activation"] = rss_mb()
        marks["not_ready"] = sorted(f"{s.ref}: {s.state}" for s in engine.components() if s.state != "ready")

    asyncio.run(main())
    with open(args.out, "w") as fh:
        json.dump(marks, fh)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    _child_main(sys.argv[2:])
    sys.exit(0)


# =========================================================================================
# parent
# =========================================================================================

import asyncio  # noqa: E402
import bisect  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "settings"


def demo_copy(target: Path) -> Path:
    shutil.copytree(DEMO, target)
    return target


def generate_settings(target: Path, components: int) -> tuple[int, int]:
    """The demo plus `components` generated candidates (GEN_PER_KEY per key, six domains).

    The YAML is written as text in the block style of the demo files, appended under the
    demo's own `candidates:` list where there is one. Returns (keys, candidates) added.
    """
    from oneiric_core.domains import Domain

    demo_copy(target)
    domains = list(Domain)
    keys = max(1, components // GEN_PER_KEY)
    blocks: dict[Any, list[str]] = {d: [] for d in domains}
    for k in range(keys):
        domain = domains[k % len(domains)]
        for c in range(GEN_PER_KEY):
            blocks[domain] += [
                f"  - key: gen{k:05d}",
                f"    provider: gen{k:05d}-p{c}",
                f"    factory: {GEN_FACTORIES[(k + c) % len(GEN_FACTORIES)]}",
                f"    priority: {c}",
            ]
    for domain in domains:
        path = target / domain.settings_file
        text = path.read_text() if path.exists() else ""
        block = "\n".join(blocks[domain]) + "\n"
        if re.search(r"^candidates:[ \t]*\n", text, re.M):
            text = re.sub(r"^candidates:[ \t]*\n", lambda m, block=block: m.group(0) + block, text, count=1, flags=re.M)
        else:
            text = text.rstrip("\n") + "\n\ncandidates:\n" + block
        path.write_text(text)
    return keys, keys * GEN_PER_KEY


# -- cold start ---------------------------------------------------------------------------

@dataclass
class Variant:
    name: str
    kind: str
    settings: Path | None = None
    autostart: bool = True
    runs: list[dict[str, Any]] = field(default_factory=list)

    def values(self, fn) -> list[float]:
        out = []
        for run in self.runs:
            try:
                value = fn(run)
            except (KeyError, TypeError):
                continue
            if value is not None:
                out.append(value)
        return out


def run_child(variant: Variant, root: Path, index: int, hold: float = 0.0) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "-", variant.name.lower()).strip("-")
    state = root / "state" / f"{slug}-{index}"
    out = root / "results" / f"{state.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant.kind, "--out", str(out)]
    if variant.settings is not None:
        cmd += ["--settings", str(variant.settings), "--state", str(state)]
    if not variant.autostart:
        cmd.append("--no-autostart")
    if hold > 0:
        cmd += ["--hold", str(hold)]
    env = dict(os.environ, COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]))
    # Bytecode as any install has it: textual's .pyc were written by pip, ours are written by
    # the warm-up run. With PYTHONDONTWRITEBYTECODE (set on some CI machines) every start
    # would recompile the project's modules, which no operator's second start does.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env[SPAWN_ENV] = repr(time.time())
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    if not out.exists():
        raise RuntimeError(f"{variant.name}: the child wrote no result (exit {proc.returncode})\n"
                           f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"{variant.name}: {result['error']}\nstderr:\n{proc.stderr[-3000:]}")
    shutil.rmtree(state, ignore_errors=True)
    return result


def ms(a: str, b: str):
    return lambda r: (r[b] - r[a]) * 1000.0


# -- event storm --------------------------------------------------------------------------

@dataclass
class PressSeries:
    calls: list[float]
    handled: list[float]
    frames: list[float]

    @property
    def latencies_ms(self) -> list[float]:
        return [(h - c) * 1000.0 for c, h in zip(self.calls, self.handled, strict=False)]

    @property
    def frame_latencies_ms(self) -> list[float]:
        out = []
        for c, h in zip(self.calls, self.handled, strict=False):  # the last press may be unhandled
            i = bisect.bisect_left(self.frames, h)
            if i < len(self.frames):
                out.append((self.frames[i] - c) * 1000.0)
        return out


async def _press_series(pilot, seconds: float, handled: list[float], frames: list[float]) -> PressSeries:
    """j/k alternately every KEY_PERIOD_S for `seconds`; each press its own task (see module doc)."""
    first_handled = len(handled)
    calls: list[float] = []
    tasks = []
    t0 = time.perf_counter()
    count = max(2, int(seconds / KEY_PERIOD_S))
    for i in range(count):
        delay = t0 + i * KEY_PERIOD_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        calls.append(time.perf_counter())
        tasks.append(asyncio.create_task(pilot.press("j" if i % 2 == 0 else "k")))
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 10.0
    while len(handled) - first_handled < len(calls) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the frame after the last key
    return PressSeries(calls, handled[first_handled:first_handled + len(calls)], sorted(frames))


async def _storm(root: Path, seconds: float, rate: float, idle_seconds: float) -> dict[str, Any]:
    from oneiric_core.domains import ComponentRef
    from oneiric_core.engine import Engine
    from oneiric_core.events import Event, Severity
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.widgets.component_tree import ComponentTree
    from oneiric_tui.widgets.swap_log import SwapLog

    settings = demo_copy(root / "storm" / "settings")
    engine = Engine(settings, state_dir=root / "storm" / "state", actor="operator")
    app = OneiricApp(engine)
    out: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.perf_counter() + 30.0
        while not (app.mode == "host" and app.statuses
                   and all(s.state == "ready" for s in app.statuses.values())):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the demo console did not get ready: mode {app.mode}, "
                                   f"states {[s.state for s in app.statuses.values()]}")
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        main = app.main
        tree = main.query_one(ComponentTree)
        if main.focused is not tree:
            tree.focus()
            await pilot.pause(0.05)

        handled: list[float] = []
        for name in ("action_cursor_down", "action_cursor_up"):
            original = getattr(tree, name)

            def wrapped(_original=original) -> Any:
                handled.append(time.perf_counter())
                return _original()

            setattr(tree, name, wrapped)

        frames = _common.record_frames(app)

        swap_log = main.query_one(SwapLog)
        event_lines = swap_log.lines
        max_lines_seen = [0]
        max_gap = [0.0]

        # (1) idle baseline
        idle = await _press_series(pilot, idle_seconds, handled, frames)

        # (2) storm
        refs = sorted(app.statuses, key=str)
        kinds = ["health-probed"] * 8 + ["activity-changed", "swap-complete"]
        total = int(seconds * rate)
        state: dict[str, Any] = {"emitted": 0, "last": None, "caught_up": None}
        emitted: list[tuple[int, float]] = []  # (event id, perf_counter when emitted)
        log_delays: list[float] = []  # per event: emitted -> in the swap log's events (ms)
        seen_upto = [0]

        def sample_log() -> None:
            now = time.perf_counter()
            max_lines_seen[0] = max(max_lines_seen[0], len(event_lines))
            newest = swap_log._events[-1].id if swap_log._events else None
            if newest is None:
                return
            while seen_upto[0] < len(emitted) and emitted[seen_upto[0]][0] <= newest:
                log_delays.append((now - emitted[seen_upto[0]][1]) * 1000.0)
                seen_upto[0] += 1

        async def emitter() -> None:
            t0 = time.perf_counter()
            n = 0
            while n < total:
                due = min(total, int((time.perf_counter() - t0) * rate) + 1)
                while n < due:
                    ref: ComponentRef = refs[n % len(refs)]
                    kind = kinds[n % len(kinds)]
                    event = engine.emit(Event(
                        kind, f"storm {n}", Severity.INFO, ref.domain, ref.key,
                        app.statuses[ref].serving, "bench", "ok", 0.1,
                    ))
                    emitted.append((event.id or 0, time.perf_counter()))
                    state["last"] = event
                    n += 1
                state["emitted"] = n
                await asyncio.sleep(0.005)
            state["emit_s"] = time.perf_counter() - t0
            state["emit_end"] = time.perf_counter()
            # Kept up? Poll (independently of the key presses) until the last event is in the log.
            deadline = time.perf_counter() + 10.0
            while time.perf_counter() < deadline:
                sample_log()
                if seen_upto[0] == len(emitted):
                    state["caught_up"] = time.perf_counter()
                    return
                await asyncio.sleep(0.005)

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                max_gap[0] = max(max_gap[0], now - last)
                last = now
                sample_log()

        tick = asyncio.create_task(ticker())
        emit_task = asyncio.create_task(emitter())
        storm = await _press_series(pilot, seconds, handled, frames)
        await emit_task
        last_event = state["last"]
        caught_up = state["caught_up"]
        await pilot.pause(0.2)
        sample_log()
        tick.cancel()
        shown = " ".join(event_lines.text_lines()[-3:]) if event_lines.is_vertical_scroll_end else ""
        subs = [s for s in engine.bus._subscriptions if s._queue.maxsize == 5000]
        # Bounded, measured after the storm from what the log holds (not from what its add()
        # returns, which trims before anyone looks): events kept, the screen-row index against
        # the rows those events fold into, the dedupe set, and the newest events kept in order.
        entries = list(event_lines._entries)
        held_ids = [e.event.id for e in entries]
        emitted_ids = [i for i, _ in emitted]
        emitted_set = set(emitted_ids)
        storm_held = [i for i in held_ids if i in emitted_set]  # the engine journals its own events too
        index_ok = event_lines._index_dirty or event_lines.screen_rows == sum(len(e.rows) for e in entries)
        bounded = {
            "held": len(entries), "index_rows": event_lines.screen_rows,
            "folded_rows": sum(len(e.rows) for e in entries), "index_ok": index_ok,
            "seen": len(swap_log._seen), "seen_max": 2 * swap_log._events.maxlen,
            "newest_kept": bool(storm_held) and storm_held == emitted_ids[-len(storm_held):]
            and (len(entries) == event_lines.max_events or len(storm_held) == len(emitted_ids)),
        }
        out.update(
            idle=idle, storm=storm, emitted=state["emitted"], emit_s=state.get("emit_s", float("nan")),
            last_in_events=last_event is not None and last_event.id in {e.id for e in swap_log._events},
            log_delays=log_delays, log_delays_complete=seen_upto[0] == len(emitted),
            last_on_screen=last_event is not None and last_event.message in shown,
            catch_up_ms=(caught_up - state["emit_end"]) * 1000 if caught_up else float("nan"),
            max_lines_seen=max_lines_seen[0], max_lines=event_lines.max_events,
            events_kept=len(swap_log._events), events_kept_max=swap_log._events.maxlen,
            dropped=sum(s.dropped for s in subs) if subs else None,
            max_stall_ms=max_gap[0] * 1000, last_message=last_event.message if last_event else "",
            bounded=bounded,
        )
    return out


# -- main ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    def extra(parser) -> None:
        parser.add_argument("--runs", type=int, default=None, help="cold starts per variant (default 5; --quick 2)")
        parser.add_argument("--components", type=int, default=None,
                            help="generated candidates for the large variant (default 10000; --quick 200)")
        parser.add_argument("--storm-seconds", type=float, default=None, help="default 10; --quick 1")
        parser.add_argument("--storm-rate", type=float, default=500.0, help="journal events per second (default 500)")
        parser.add_argument("--hold", type=float, default=None,
                            help="seconds the last large run keeps hosting before a last RSS reading "
                                 "(default 30; --quick 0)")
        parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
        parser.add_argument("--scale", action="store_true",
                            help="only the scale run: the console and the headless host activating the same "
                                 "generated settings (default 50000 candidates; --quick 400), interleaved")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    if args.scale:
        root = Path(tempfile.mkdtemp(prefix="oneiric-bench-scale-"))
        try:
            report_scale(args, root, args.runs or (1 if args.quick else 2),
                         args.components or (400 if args.quick else SCALE_COMPONENTS))
        finally:
            if args.keep:
                print(f"(kept {root})")
            else:
                shutil.rmtree(root, ignore_errors=True)
        return
    runs = args.runs or (2 if args.quick else 5)
    components = args.components or (200 if args.quick else 10_000)
    storm_s = args.storm_seconds or (1.0 if args.quick else 10.0)
    idle_s = 0.5 if args.quick else 3.0
    hold_s = args.hold if args.hold is not None else (0.0 if args.quick else 30.0)

    root = Path(tempfile.mkdtemp(prefix="oneiric-bench-console-"))
    try:
        report(args, root, runs, components, storm_s, idle_s, hold_s)
    finally:
        if args.keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(args, root: Path, runs: int, components: int, storm_s: float, idle_s: float, hold_s: float) -> None:
    print(f"bench/console.py -- {_common.environment_line()}; {os.cpu_count()} CPUs")
    demo = demo_copy(root / "demo-settings")
    t = time.perf_counter()
    gen_keys, gen_cands = generate_settings(root / "large-settings", components)
    gen_s = time.perf_counter() - t
    large_label = f"console, {gen_cands:,} generated"
    print(f"headless {SIZE[0]}x{SIZE[1]}; {runs} interleaved cold starts per variant, each a fresh process and "
          f"state dir; generated settings: {gen_keys:,} keys x {GEN_PER_KEY} candidates over 6 domain files "
          f"on top of the demo ({gen_s:.1f} s to write)")
    print()

    empty = Variant("empty Textual app (Header+Footer)", "empty")
    demo_v = Variant("console, demo settings", "console", demo)
    large = Variant(large_label, "console", root / "large-settings")
    large_idle = Variant(f"{large_label}, autostart=False (info)", "console", root / "large-settings", autostart=False)
    variants = [empty, demo_v, large]
    run_child(demo_v, root, -1)  # warm-up, not counted: writes the project's .pyc files
    for i in range(runs):
        for v in variants:
            last_large = v is large and i == runs - 1
            v.runs.append(run_child(v, root, i, hold=hold_s if last_large else 0.0))
    large_idle.runs.append(run_child(large_idle, root, 0))

    base = _common.median(empty.values(ms("spawn", "first_frame")))
    rows = []
    for v in [empty, demo_v, large, large_idle]:
        total = v.values(ms("spawn", "first_frame"))
        med = _common.median(total)
        rows.append([
            v.name, len(v.runs), med, min(total), max(total), med / base,
            _common.median(v.values(ms("spawn", "first_statement"))),
            _common.median(v.values(ms("first_statement", "imported"))),
            _common.median(v.values(ms("imported", "engine_built"))),
            _common.median(v.values(ms("engine_built", "first_frame"))),
            round(_common.median(v.values(lambda r: r["serving_at_first_frame"]))) if v.kind == "console" else "-",
            round(_common.median(v.values(lambda r: r["keys"]))) if v.kind == "console" else "-",
        ])
    print("cold start to first frame (ms from spawn; medians; breakdown columns are medians of each phase)")
    print(_common.table(
        ["app", "runs", "first frame ms", "min", "max", "ratio", "python up", "imports", "Engine()",
         "app to frame", "serving at frame", "keys"], rows))
    print()

    mem_rows = []
    held = large.values(lambda r: r["rss_after_hold"])
    for v in [empty, demo_v, large, large_idle]:
        hosting = v.kind == "console" and v.autostart
        mem_rows.append([
            v.name, _common.median(v.values(lambda r: r["rss_first_frame"])),
            _common.median(v.values(lambda r: r["rss_after_activation"])) if hosting else "-",
            held[0] if v is large and held else "-",
            _common.median(v.values(lambda r: (r["activated"] - r["first_frame"]) * 1000)) if hosting else "-",
            max(v.values(lambda r: r["max_loop_stall_ms"])) if hosting else "-",
            f"{sum(1 for r in v.runs if r.get('not_ready'))}/{len(v.runs)}" if hosting else "-",
        ])
    print(f"memory and activation (RSS medians; 'after activation' is {SETTLE_S:g} s after the engine reported the "
          f"host started; the hold column is one run; loop stall is the worst run, from app ready to activation done)")
    headers = ["app", "RSS MB at first frame", "RSS MB after activation", f"RSS MB {hold_s:g} s later",
               "activation done ms after frame", "max loop stall ms", "runs with keys not ready"]
    if not held:
        del headers[3]
        for row in mem_rows:
            del row[3]
    print(_common.table(headers, mem_rows))
    for v in (demo_v, large):
        not_ready = sorted({x for run in v.runs for x in run.get("not_ready", [])})
        if not_ready:
            print(f"{v.name}: not ready after activation: {'; '.join(not_ready[:5])}"
                  + (" ..." if len(not_ready) > 5 else ""))
    print()

    storm = asyncio.run(_storm(root, storm_s, args.storm_rate, idle_s))
    srows = []
    for label, series in (("idle (no extra events)", storm["idle"]),
                          (f"storm {args.storm_rate:g} ev/s", storm["storm"])):
        lat = series.latencies_ms
        frame = series.frame_latencies_ms
        srows.append([label, len(series.calls), len(lat), _common.median(lat), _common.percentile(lat, 95),
                      max(lat) if lat else float("nan"), sum(1 for x in lat if x >= KEY_TARGET_MS),
                      _common.median(frame), _common.percentile(frame, 95), max(frame) if frame else float("nan")])
    print(f"event storm: demo console hosting, {SIZE[0]}x{SIZE[1]}, j/k every {KEY_PERIOD_S * 1000:.0f} ms; "
          f"latency from pilot.press() to the tree's cursor action (key) and to the next frame")
    print(_common.table(["phase", "presses", "handled", "key median ms", "key p95 ms", "key max ms",
                         f">= {KEY_TARGET_MS:g} ms", "frame median ms", "frame p95 ms", "frame max ms"], srows))
    idle_p95 = _common.percentile(storm["idle"].latencies_ms, 95)
    storm_p95 = _common.percentile(storm["storm"].latencies_ms, 95)
    print(f"emitted {storm['emitted']:,} events in {storm['emit_s']:.2f} s "
          f"({storm['emitted'] / storm['emit_s']:.0f}/s); "
          f"storm p95 / idle p95 = {storm_p95 / idle_p95:.1f}x; longest event-loop stall during the storm "
          f"{storm['max_stall_ms']:.0f} ms")
    delays = storm["log_delays"]
    print(f"swap log: at most {storm['max_lines_seen']:,} lines (max_lines {storm['max_lines']:,}); "
          f"{storm['events_kept']:,} events kept (cap {storm['events_kept_max']:,}); last event "
          f"'{storm['last_message']}' in the log: {'yes' if storm['last_in_events'] else 'NO'}"
          f" ({storm['catch_up_ms']:.0f} ms after the last emit), "
          f"on screen: {'yes' if storm['last_on_screen'] else 'no'}; "
          f"bus events dropped for the console: {storm['dropped']}")
    print(f"swap log lag, emit -> in the log, per event: median {_common.median(delays):.0f} ms, "
          f"p95 {_common.percentile(delays, 95):.0f} ms, max {max(delays) if delays else float('nan'):.0f} ms "
          f"({len(delays):,} events)")
    print()

    ok_all = True
    demo_ratio = rows[1][5]
    large_ratio = rows[2][5]
    ok = demo_ratio <= DEMO_RATIO_TARGET
    ok_all &= ok
    print(_common.verdict(ok, f"cold start, demo: first frame {rows[1][2]:.0f} ms = {demo_ratio:.2f}x the empty app "
                              f"({base:.0f} ms); target <= {DEMO_RATIO_TARGET:g}x"))
    ok = large_ratio <= LARGE_RATIO_TARGET
    ok_all &= ok
    print(_common.verdict(ok, f"cold start, {gen_cands:,} generated candidates: first frame {rows[2][2]:.0f} ms = "
                              f"{large_ratio:.2f}x the empty app; target <= {LARGE_RATIO_TARGET:g}x "
                              f"(Engine() alone {rows[2][8]:.0f} ms)"))
    lat = storm["storm"].latencies_ms
    over = sum(1 for x in lat if x >= KEY_TARGET_MS)
    ok = over == 0 and len(lat) == len(storm["storm"].calls)
    ok_all &= ok
    print(_common.verdict(ok, f"event storm: {over} of {len(storm['storm'].calls)} key presses took >= "
                              f"{KEY_TARGET_MS:g} ms (max {max(lat) if lat else float('nan'):.0f} ms, "
                              f"{len(storm['storm'].calls) - len(lat)} not handled)",
                          holds=len(lat) == len(storm["storm"].calls)))
    b = storm["bounded"]
    ok = (storm["max_lines_seen"] <= storm["max_lines"] and b["held"] <= storm["max_lines"] and b["index_ok"]
          and b["seen"] <= b["seen_max"] and b["newest_kept"] and storm["last_in_events"])
    ok_all &= ok
    print(_common.verdict(ok, f"swap log bounded after the storm ({b['held']:,} events held <= {storm['max_lines']:,}; "
                              f"screen index {b['index_rows']:,} rows for {b['folded_rows']:,} folded; dedupe set "
                              f"{b['seen']:,} <= {b['seen_max']:,}; newest kept in order: "
                              f"{'yes' if b['newest_kept'] else 'NO'}) and kept up (last event in the log: "
                              f"{'yes' if storm['last_in_events'] else 'no'})", holds=ok))
    rss_frame = _common.median(large.values(lambda r: r["rss_first_frame"]))
    rss_active = _common.median(large.values(lambda r: r["rss_after_activation"]))
    worst = max(rss_frame, rss_active)
    ok = worst < RSS_TARGET_MB
    ok_all &= ok
    later = f", {held[0]:.0f} MB {hold_s:g} s later (not judged)" if held else ""
    print(_common.verdict(ok, f"memory, {gen_cands:,} generated candidates: {rss_frame:.0f} MB at first frame, "
                              f"{rss_active:.0f} MB after activation{later}; target < {RSS_TARGET_MB:g} MB "
                              f"(empty app {_common.median(empty.values(lambda r: r['rss_first_frame'])):.0f} MB)"))
    _common.finish(ok_all, args.check)


# -- scale: 50,000 components, the console against the headless host ---------------------

def report_scale(args, root: Path, runs: int, components: int) -> None:
    print(f"bench/console.py --scale -- {_common.environment_line()}; {os.cpu_count()} CPUs")
    t = time.perf_counter()
    keys, cands = generate_settings(root / "scale-settings", components)
    print(f"generated settings: {keys:,} keys x {GEN_PER_KEY} candidates over 6 domain files on top of the demo "
          f"({time.perf_counter() - t:.1f} s to write); {runs} interleaved run(s) per host, each a fresh process "
          f"and state dir; activation = engine.start() from call to return (console: until the app has seen it)")
    print()
    headless = Variant("headless host (oneiric run)", "headless", root / "scale-settings")
    console = Variant(f"console {SIZE[0]}x{SIZE[1]}", "console", root / "scale-settings")
    run_child(Variant("warm-up", "console", DEMO), root, -1)  # writes the project's .pyc files
    for i in range(runs):
        for v in (headless, console):
            v.runs.append(run_child(v, root, i))

    def activation_s(r: dict[str, Any]) -> float:
        return r["activated_pc"] - r["start_called_pc"]

    base_s = _common.median(headless.values(activation_s))
    base_stall = max(headless.values(lambda r: r["activation_stall_ms"]))
    rows = []
    for v in (headless, console):
        act = _common.median(v.values(activation_s))
        stall = max(v.values(lambda r: r["activation_stall_ms"]))
        rows.append([v.name, len(v.runs), act, act / base_s, stall, stall / base_stall,
                     _common.median(v.values(lambda r: r["rss_after_activation"])),
                     round(_common.median(v.values(lambda r: r["keys"]))),
                     f"{sum(1 for r in v.runs if r.get('not_ready'))}/{len(v.runs)}"])
    print(f"activation with {cands:,} generated candidates (medians; worst stall = worst run's longest gap "
          f"between 5 ms polls of the loop during activation; RSS {SETTLE_S:g} s after)")
    print(_common.table(["host", "runs", "activation s", "ratio", "worst stall ms", "stall ratio",
                         "RSS MB after activation", "keys", "runs with keys not ready"], rows))
    print()
    ok_all = True
    ratio = rows[1][3]
    ready = not any(r.get("not_ready") for v in (headless, console) for r in v.runs)
    ok = ratio <= SCALE_RATIO_TARGET and ready
    ok_all &= ok
    print(_common.verdict(ok, f"activation, {cands:,} components: console {rows[1][2]:.1f} s = {ratio:.2f}x the "
                              f"headless host ({base_s:.1f} s); target <= {SCALE_RATIO_TARGET:g}x; every key "
                              f"ready in every run: {'yes' if ready else 'NO'}", holds=ready))
    stall = rows[1][4]
    ok = stall < SCALE_STALL_MS
    ok_all &= ok
    print(_common.verdict(ok, f"loop stall during activation, {cands:,} components: console worst {stall:.0f} ms "
                              f"= {rows[1][5]:.2f}x the headless host's ({base_stall:.0f} ms); "
                              f"target < {SCALE_STALL_MS:g} ms"))
    rss = rows[1][6]
    ok = rss < SCALE_RSS_MB
    ok_all &= ok
    print(_common.verdict(ok, f"memory, {cands:,} components: console {rss:.0f} MB after activation "
                              f"(headless host {rows[0][6]:.0f} MB); target < {SCALE_RSS_MB:g} MB"))
    _common.finish(ok_all, args.check)


if __name__ == "__main__":
    main()
