"""Benchmark: Engine() on 10,000 candidates, the engine's share of a console cold start.

Target (issue 3, feeding docs/architecture.md §11 "console cold start with 10,000 components within
3x of an empty Textual app"): building the Engine on the generated 10,000-candidate settings
costs at most RATIO_TARGET (20) times parsing the same data with `json.loads`, the fastest
parser the standard library has, measured in the same process. Before the settings fast path
(yaml-rs) and the registry's bulk path, Engine() took about 2,000 ms here, some 150-200x
json.loads; 20x is the 10x cut that issue 3 asks for.

The settings are those of bench/console.py (its generator is imported): the demo plus 2,500
generated keys x 4 candidates spread over the six domain files, about 1.2 MB of YAML.

Every run is a fresh process (`bench/engine_load.py --child ...`) with a fresh state
directory, as a console start is: the first Engine() of a process pays for lazy imports and
first-use caches, and writes the last-good copies of every settings file. In that process,
after the imports:

  baselines   best of 3: reading the seven files (bytes), and `json.loads` of the same data
              (the parent wrote it as JSON beforehand)
  Engine()    once, with its phases timed by wrapping functions of this process only (no
              engine file is changed): settings load (the fast path's checks, the YAML parse,
              the fast validation, the careful path if a file needs it), the last-good
              copies, opening the state store, and registering the candidates (registry and
              resolver); `rest` is everything else in Engine.__init__
  again       a second Engine() on the same state directory (copies already kept), for
              information

With --health-rounds N the last run also hosts its first engine (every winner activated)
and probes every key N times, and RSS is printed at both points: the core's memory with
10,000 candidates, without the console.

Usage:  .venv/bin/python bench/engine_load.py [--quick] [--check] [--runs N] [--components N]
                                              [--health-rounds N]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import asyncio
import builtins
import gc
import json
import os
import sys
import time

RATIO_TARGET = 20.0
BASELINE_REPEATS = 3


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# =========================================================================================
# child: one Engine() in a fresh process, reported as JSON
# =========================================================================================

def _child_main(settings_dir: str, state_dir: str, json_dir: str, out: str, health_rounds: str = "0") -> None:
    t0 = time.perf_counter()
    from oneiric_core import engine as engine_mod
    from oneiric_core import registry, resolver, settings, settings_careful, store

    marks: dict[str, float] = {"imports_ms": (time.perf_counter() - t0) * 1000, "rss_before_mb": _rss_mb()}
    names = sorted(os.listdir(settings_dir))
    paths = [os.path.join(settings_dir, n) for n in names if n.endswith(".yml")]
    json_texts = []
    for name in sorted(os.listdir(json_dir)):
        with open(os.path.join(json_dir, name)) as fh:
            json_texts.append(fh.read())

    def best_of(fn) -> float:
        best = float("inf")
        for _ in range(BASELINE_REPEATS):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best * 1000

    def read_all() -> None:
        for path in paths:
            with open(path, "rb") as fh:
                fh.read()

    marks["read_ms"] = best_of(read_all)
    marks["json_ms"] = best_of(lambda: [json.loads(t) for t in json_texts])

    # Phase timers: wrap functions where Engine() looks them up (module or class attributes).
    spent: dict[str, float] = {}

    def timed(owner, attr: str, phase: str) -> None:
        original = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + (time.perf_counter() - start) * 1000

        setattr(owner, attr, wrapper)

    timed(settings.SettingsLoader, "load", "settings")
    timed(settings, "_needs_careful", "prescreen")
    timed(settings, "_fast_load", "fast_load")
    timed(settings, "_fast_parse", "fast_parse")
    timed(settings_careful, "parse_careful", "careful")
    timed(settings.SettingsLoader, "use_keep_dir", "keep")
    timed(store.StateStore, "__init__", "store")
    timed(engine_mod.Engine, "apply_settings", "apply")
    timed(registry.CandidateRegistry, "replace_source_fields", "replace_source")
    timed(resolver.Resolver, "_recompute", "recompute")

    # The cyclic collector: its pauses inside Engine() (a gc callback), and the pass over the
    # young generations that Engine() leaves for later (it pauses the collector while it
    # builds, see oneiric_core/bulk.py), timed right after as gc.collect(1).
    collector = {"ms": 0.0, "full": 0, "start": 0.0}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collector["start"] = time.perf_counter()
        else:
            collector["ms"] += (time.perf_counter() - collector["start"]) * 1000
            collector["full"] += info["generation"] == 2

    # Modules Engine() imports on first use (time in top-level imports that load something).
    real_import = builtins.__import__
    importing = {"depth": 0, "ms": 0.0}

    def counting_import(*args, **kwargs):
        if importing["depth"]:
            return real_import(*args, **kwargs)
        importing["depth"] += 1
        loaded, start = len(sys.modules), time.perf_counter()
        try:
            return real_import(*args, **kwargs)
        finally:
            importing["depth"] -= 1
            if len(sys.modules) > loaded:
                importing["ms"] += (time.perf_counter() - start) * 1000

    gc.callbacks.append(on_gc)
    modules_before = set(sys.modules)
    builtins.__import__ = counting_import
    start = time.perf_counter()
    engine = engine_mod.Engine(settings_dir, state_dir=state_dir, actor="bench")
    marks["engine_ms"] = (time.perf_counter() - start) * 1000
    builtins.__import__ = real_import
    gc.callbacks.remove(on_gc)
    marks["lazy_imports_ms"] = importing["ms"]
    marks["lazy_modules"] = sorted({m.split(".")[0] if not m.startswith("oneiric_core") else ".".join(m.split(".")[:2])
                                    for m in set(sys.modules) - modules_before})
    marks["gc_ms"], marks["gc_full"] = collector["ms"], collector["full"]
    start = time.perf_counter()
    gc.collect(1)
    marks["gc_after_ms"] = (time.perf_counter() - start) * 1000
    marks["rss_after_mb"] = _rss_mb()
    marks["candidates"] = len(engine.registry)
    marks["keys"] = len(engine.resolver.refs())
    marks["problems"] = len(engine.settings.problems)
    for phase, value in spent.items():
        marks[f"{phase}_ms"] = value
    spent.clear()
    if int(health_rounds) > 0:  # the memory run hosts its engine (and builds no second one)
        marks.update(asyncio.run(_host(engine, int(health_rounds))))
    else:
        start = time.perf_counter()
        engine_mod.Engine(settings_dir, state_dir=state_dir, actor="bench")
        marks["again_ms"] = (time.perf_counter() - start) * 1000
    with open(out, "w") as fh:
        json.dump(marks, fh)
    os._exit(0)  # stopping thousands of providers is not part of this measurement


async def _host(engine, rounds: int) -> dict[str, float]:
    """RSS with the engine hosting: every winner activated, then after `rounds` health probes
    of every key (each key keeps its last `health.history` samples)."""
    engine.health.interval_s = 3600.0  # the rounds below are the only probes
    await engine.start()
    out = {"rss_activated_mb": _rss_mb()}
    for _ in range(rounds):
        await engine.health.probe_all()
    out["rss_health_mb"] = _rss_mb()
    return out


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    _child_main(*sys.argv[2:7])
    sys.exit(0)


# =========================================================================================
# parent
# =========================================================================================

import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from console import GEN_PER_KEY, generate_settings  # noqa: E402

PHASES = [  # (label, key); indented labels are parts of the row above
    ("Engine() total", "engine"),
    ("  settings: read, parse, validate", "settings"),
    ("    fast path checks (_needs_careful)", "prescreen"),
    ("    YAML parse incl. checks (_fast_load)", "fast_load"),
    ("    validation (schema.fast_validate)", "validate"),
    ("    careful path (ruamel)", "careful"),
    ("  last-good copies (use_keep_dir)", "keep"),
    ("  state store open", "store"),
    ("  candidates: registry + resolver", "apply"),
    ("    registry (replace_source_fields, incl. re-ranking)", "replace_source"),
    ("    resolver re-ranking", "recompute"),
    ("  rest of Engine.__init__", "rest"),
    ("  (modules imported on first use, inside the phases above)", "lazy_imports"),
    ("  (cyclic GC pauses, inside the phases above)", "gc"),
    ("young-generation GC pass right after (info)", "gc_after"),
    ("Engine() again, same state dir (info)", "again"),
]


def write_json_baseline(settings_dir: Path, json_dir: Path) -> None:
    """Each settings file's data as JSON, for the json.loads baseline."""
    from oneiric_core.settings import _fast_load
    from oneiric_core.settings_careful import _parse_yaml, _to_plain

    json_dir.mkdir()
    for path in sorted(settings_dir.glob("*.yml")):
        text = path.read_text()
        data = _fast_load(text)
        if data is None:
            parsed = _parse_yaml(path, text)
            data = _to_plain(parsed.data, [10**7]) if parsed.data is not None else {}
        (json_dir / (path.stem + ".json")).write_text(json.dumps(data))


def run_child(settings_dir: Path, root: Path, index: int, health_rounds: int = 0) -> dict[str, Any]:
    state = root / "state" / f"run-{index}"
    out = root / f"run-{index}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(settings_dir), str(state),
           str(root / "json"), str(out), str(health_rounds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"child failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    shutil.rmtree(state, ignore_errors=True)
    fast = result.get("fast_parse_ms", 0.0)
    result["validate_ms"] = fast - result.get("fast_load_ms", 0.0)
    result["rest_ms"] = result["engine_ms"] - sum(
        result.get(f"{k}_ms", 0.0) for k in ("settings", "keep", "store", "apply"))
    return result


def main(argv: list[str] | None = None) -> None:
    def extra(parser) -> None:
        parser.add_argument("--runs", type=int, default=None, help="fresh processes (default 7; --quick 2)")
        parser.add_argument("--components", type=int, default=None,
                            help="generated candidates (default 10000; --quick 200)")
        parser.add_argument("--health-rounds", type=int, default=0,
                            help="also host the first engine of the last run (activate every winner), probe "
                                 "every key N times, and report RSS (memory, for information)")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    runs = args.runs or (2 if args.quick else 7)
    components = args.components or (200 if args.quick else 10_000)
    root = Path(tempfile.mkdtemp(prefix="oneiric-bench-engine-"))
    try:
        settings_dir = root / "settings"
        keys, cands = generate_settings(settings_dir, components)
        write_json_baseline(settings_dir, root / "json")
        size = sum(p.stat().st_size for p in settings_dir.glob("*.yml"))
        results = [run_child(settings_dir, root, i, args.health_rounds if i == runs - 1 else 0)
                   for i in range(runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(results, keys, cands, size, runs, args.check)


def report(results: list[dict[str, Any]], keys: int, cands: int, size: int, runs: int, check: bool) -> None:
    def med(key: str) -> float:
        return _common.median([r[f"{key}_ms"] for r in results if f"{key}_ms" in r])

    print(f"bench/engine_load.py -- {_common.environment_line()}")
    first = results[0]
    print(f"settings: the demo plus {keys:,} generated keys x {GEN_PER_KEY} = {cands:,} candidates "
          f"({size / 1e6:.2f} MB of YAML in 7 files); the engine registered {first['candidates']:,} "
          f"candidates on {first['keys']:,} keys ({first['problems']} settings problems); "
          f"{runs} fresh processes, medians")
    print()
    engine = med("engine")
    rows = []
    for label, key in PHASES:
        values = [r[f"{key}_ms"] for r in results if f"{key}_ms" in r]
        if not values:
            continue
        share = "-" if key in ("again", "gc_after") else f"{_common.median(values) / engine * 100:.0f}%"
        rows.append([label, _common.median(values), min(values), max(values), share])
    print(_common.table(["phase", "median ms", "min", "max", "share of Engine()"], rows))
    print()
    json_ms, read_ms = med("json"), med("read")
    ratio = engine / json_ms
    print(_common.table(
        ["baseline (same process, best of 3)", "median ms", "Engine() / baseline"],
        [["read the 7 files (bytes)", read_ms, engine / read_ms],
         ["json.loads of the same data", json_ms, ratio]]))
    print(f"full collections inside Engine(): {_common.median([r['gc_full'] for r in results]):.0f} (median); "
          f"modules Engine() imported on first use: {', '.join(first['lazy_modules']) or 'none'}")
    print(f"imports before Engine(): {med('imports'):.0f} ms; "
          f"RSS {_common.median([r['rss_before_mb'] for r in results]):.0f} MB "
          f"before Engine(), {_common.median([r['rss_after_mb'] for r in results]):.0f} MB after")
    hosted = results[-1]
    if "rss_activated_mb" in hosted:
        print(f"RSS hosting (last run): {hosted['rss_activated_mb']:.1f} MB with every winner activated, "
              f"{hosted['rss_health_mb']:.1f} MB after the health rounds")
    print()
    ok = ratio <= RATIO_TARGET
    print(_common.verdict(ok, f"Engine() on {cands:,} candidates: {engine:.0f} ms = {ratio:.1f}x json.loads of the "
                              f"same data ({json_ms:.1f} ms); target <= {RATIO_TARGET:g}x (Engine() includes "
                              f"{med('lazy_imports'):.0f} ms of first-use imports)"))
    _common.finish(ok, check)


if __name__ == "__main__":
    main()
