"""Shared helpers for the benchmark scripts: argument parsing, statistics, timing, tables.

Nothing here asserts on absolute times: every script prints ratios against a baseline it
measures in the same run, because a shared machine can be 2x slower from one minute to
the next while the ratio stays put.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import timeit
from collections.abc import Sequence
from typing import Any

# Set by parse_args: a --quick run judges no target on speed or size (see verdict).
QUICK = False
_broken: list[str] = []


def parse_args(description: str, argv: Sequence[str] | None = None,
               extra: Any = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and iterations (the smoke test uses it); the figures are not meaningful")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target FAILs (without it the script always exits 0: it is a report)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    global QUICK
    QUICK = args.quick
    return args


def environment_line() -> str:
    return (f"python {platform.python_version()} ({platform.python_implementation()}) on "
            f"{platform.system()} {platform.machine()}")


# -- statistics ---------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- micro timing -------------------------------------------------------------------------

def best_ns_per_op(jobs: dict[Any, tuple[str, str, dict[str, Any], int]], *, target_s: float = 0.05,
                   repeat: int = 7) -> dict[Any, float]:
    """timeit-style: best of `repeat` runs of each job, in ns per operation.

    A job is (stmt, setup, namespace, ops): `stmt` runs `ops` operations (e.g. a loop over
    1,000 keys). Names bound in `setup` are locals of timeit's inner function, so the
    statement pays LOAD_FAST, not global lookups. Each loop count is calibrated so one run
    lasts about `target_s`. The jobs are timed *interleaved* (round 1: a, b, c; round 2:
    a, b, c; ...) so a slow patch of a noisy machine hits all of them alike instead of
    one, and best-of-`repeat` drops the slow rounds.
    """
    timers = {name: timeit.Timer(stmt, setup, globals=ns) for name, (stmt, setup, ns, _) in jobs.items()}
    numbers = {name: _calibrate(timer, target_s) for name, timer in timers.items()}
    best = {name: math.inf for name in jobs}
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]))
    return {name: best[name] / (numbers[name] * jobs[name][3]) * 1e9 for name in jobs}


def _calibrate(timer: timeit.Timer, target_s: float) -> int:
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target_s / 5 or number >= 1 << 24:
            break
        number *= 2 if elapsed > target_s / 50 else 10
    return max(1, int(number * target_s / max(elapsed, 1e-9)))


# -- output -------------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=False))).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool, text: str, *, holds: bool = True) -> str:
    """The verdict line: `PASS:` or `FAIL:` on the target (`ok`).

    `holds` is the part that must be true at any size (every event kept, every command
    answered, the journal intact): when it is false the line is `FAIL:` even under --quick.
    The rest is a figure against a target, which the tiny sizes of --quick cannot judge:
    there the line is `SKIP:`, never a `PASS:` or `FAIL:` nobody should read, so a `FAIL:`
    line always means something (tests/test_bench_smoke.py fails on one)."""
    if not holds:
        _broken.append(text)
        return f"FAIL: {text}"
    if QUICK:
        return f"SKIP: {text} (--quick: the target is not judged at these sizes)"
    return f"{'PASS' if ok else 'FAIL'}: {text}"


def finish(ok: bool, check: bool) -> None:
    """Exit 1 under --check when a target FAILed (under --quick: when something that must
    hold at any size did not); else 0, the run is a report."""
    sys.stdout.flush()
    failed = bool(_broken) if QUICK else not ok
    sys.exit(1 if (check and failed) else 0)


def record_frames(app: Any) -> list[float]:
    """perf_counter() of every screen update the app hands to its display from now on
    (skipping empty ones and those inside batch_update), appended to the returned list.
    Wraps `App._display` on the instance: private API, fine with textual pinned."""
    import time

    frames: list[float] = []
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        original_display(screen, renderable)
        if renderable is not None and not app._batch_count:
            frames.append(time.perf_counter())

    app._display = display
    return frames
