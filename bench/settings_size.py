"""Benchmark: what a settings file costs at the size limit, and what refusing a larger one costs.

Issue 12, point 4: a 53 MB settings file took 4 min 45 s and 1.95 GB in `config validate`, and a
host's watcher would have paid the same on its event loop. Files are now held to
`limits.settings_max_bytes` (default 8 MiB) before they are read. This measures, each in a fresh
process (`--child`), through the loader's own read-and-parse (`settings._read_and_parse`):

  demo              the demo's adapters.yml (1 KiB): the normal case
  1/8 of the cap    a generated file of 1 MiB: the baseline for "linear"
  at cap, valid     a generated domain file just under the limit (plain block YAML, ~70,000
                    candidates): the fast path (yaml-rs + the schema's fast validator)
  at cap, 1 error   the same file with one bad provider name: worded by key path from the data
                    (settings.CAREFUL_MAX_CHARS) instead of handed to the careful parser
  careful sample    a smaller file the fast path must leave to the careful parser (it holds an
                    anchor): ruamel's pure-Python round-trip parser; the time per MiB is
                    extrapolated to the limit (informational: measuring it at 8 MiB takes a minute)
  53 MB refused     a 53 MiB file refused by its size (fstat of the open file, nothing read)

Columns: median ms over the runs, peak RSS increase of the child during the parse (VmHWM
minus the VmRSS before it), and, for information, the ratio to `json.loads` of the same data
measured in the same child (the baseline engine_load.py uses).

Verdicts:
  * refusing the 53 MB file takes under 100 ms, and under a tenth of parsing a file at the cap;
  * a valid file at the cap costs at most 1.5x the time per byte of a file 1/8 its size (the
    cost is linear, so the limit bounds it), and under 2.5 s: half of the 5 s after which a
    host's lease is stale (store.LEASE_STALE_AFTER_S), since the watcher parses on the host's
    event loop and a longer stall could let another process take the host role;
  * a file at the cap with a schema error is worded within 3x of the valid parse (it never
    falls back to the careful parser, ~6 s per MiB);
  * the parse at the cap raises the process's peak RSS by less than 250 MB, docs/architecture.md
    §11's budget for a whole host with 50,000 components (a file at the cap holds ~70,000).

Usage:  .venv/bin/python bench/settings_size.py [--quick] [--check] [--runs N]
Exits 0 (it is a report) unless --check is given and a target FAILs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import _common  # noqa: E402

MiB = 1024 * 1024
REFUSE_TARGET_MS = 100.0
LINEAR_TARGET = 1.5
STALL_TARGET_S = 2.5  # half of store.LEASE_STALE_AFTER_S (5 s)
ERROR_RATIO_TARGET = 3.0
PEAK_TARGET_MB = 250.0
CANDIDATE = "  - key: k{n}\n    provider: p{n}\n    factory: oneiric_core.providers.cache_memory:create\n"


def _status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (its peak) of this process. Not getrusage's ru_maxrss:
    Linux carries the parent's peak into a child across fork and exec."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# =========================================================================================
# child: one read-and-parse in a fresh process, reported as JSON on stdout
# =========================================================================================

def _child(path: str, json_path: str, cap: str) -> None:
    from oneiric_core import settings
    from oneiric_core.input_limits import InputLimits

    if os.path.exists(json_path):
        with open(json_path) as fh:
            json_text = fh.read()
    else:
        json_text = ""
    limits = InputLimits(max_bytes=int(cap))
    # Every path's modules and first-use caches (yaml-rs, the schema's validators, pydantic,
    # ruamel) loaded outside the measurement, alike for every case: what is left is what the
    # file's size costs.
    warm = Path("warm/adapters.yml")
    for text in ("candidates:\n  - {key: a, provider: b, factory: 'a.b:c'}\n",
                 "candidates:\n  - key: a\n    provider: -b\n    factory: a.b:c\n", "a: &x 1\nb: *x\n"):
        settings._parse_text(warm, text, settings.DomainSettings)
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    result = settings._read_and_parse(Path(path), settings.DomainSettings, limits)
    ms = (time.perf_counter() - start) * 1000
    peak = _status_mb("VmHWM")
    json_ms = float("nan")
    if json_text:
        best = float("inf")
        for _ in range(3):
            begin = time.perf_counter()
            json.loads(json_text)
            best = min(best, time.perf_counter() - begin)
        json_ms = best * 1000
    print(json.dumps({"ms": ms, "peak_delta_mb": max(0.0, peak - before), "json_ms": json_ms,
                      "ok": result.instance is not None and not result.problems,
                      "problems": [p.reason for p in result.problems][:1]}))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    _child(*sys.argv[2:5])


# =========================================================================================
# parent
# =========================================================================================

def candidates_text(size: int, *, error_at: int | None = None, anchor: bool = False) -> str:
    """A valid domain file of just under `size` bytes; `error_at`: one bad provider name there;
    `anchor`: one anchor and alias (which sends the file to the careful parser)."""
    lines = ["candidates:\n"]
    if anchor:
        lines = ["candidates:\n", "  - key: anchored\n    provider: anchored\n    factory: "
                 "oneiric_core.providers.cache_memory:create\n    metadata: &meta {team: ops}\n",
                 "  - key: aliased\n    provider: aliased\n    factory: oneiric_core.providers.cache_memory:create\n"
                 "    metadata: *meta\n"]
    total = sum(len(line) for line in lines)
    n = 0
    while True:
        line = CANDIDATE.format(n=n)
        if total + len(line) > size:
            break
        if error_at is not None and n == error_at:
            line = line.replace(f"provider: p{n}", f"provider: -p{n}")
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)


def as_json(text: str) -> str:
    from oneiric_core.settings import _fast_loader

    try:
        data = _fast_loader()(text)
    except ValueError:  # yaml-rs's YAMLDecodeError: a text only ruamel reads
        from ruamel.yaml import YAML

        data = YAML(typ="safe").load(text)
    return json.dumps(data)


def run_child(path: Path, json_path: Path, cap: int) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(path), str(json_path),
                           str(cap)], capture_output=True, text=True, cwd=REPO, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"child failed for {path.name}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    def extra(parser):
        parser.add_argument("--runs", type=int, default=3, help="fresh processes per case (default 3; --quick 1)")

    args = _common.parse_args(__doc__.splitlines()[0], extra=extra)
    runs = 1 if args.quick else args.runs
    cap = MiB // 2 if args.quick else 8 * MiB
    careful_size = 32 * 1024 if args.quick else 512 * 1024
    refused_size = 53 * MiB
    work = Path(tempfile.mkdtemp(prefix="oneiric-bench-size-"))
    try:
        files: dict[str, tuple[Path, int]] = {}

        def add(name: str, text: str, size_for_cap: int = cap) -> None:
            path = work / name
            path.write_text(text)
            (work / (name + ".json")).write_text(as_json(text) if len(text) < 2 * cap else "")
            files[name] = (path, size_for_cap)

        add("demo.yml", (REPO / "settings" / "adapters.yml").read_text())
        add("one-mib.yml", candidates_text(cap // 8))
        at_cap = candidates_text(cap)
        add("at-cap.yml", at_cap)
        count = at_cap.count("  - key: ")
        add("at-cap-error.yml", candidates_text(cap, error_at=count // 2))
        add("sample.careful.yml", candidates_text(careful_size, anchor=True))
        refused = work / "refused.yml"
        with open(refused, "w") as fh:
            block = CANDIDATE.format(n=0) * 1000
            while fh.tell() < refused_size:
                fh.write(block)
        files["refused.yml"] = (refused, cap)

        labels = {"demo.yml": "demo", "one-mib.yml": "1/8 of the cap", "at-cap.yml": "at cap, valid",
                  "at-cap-error.yml": "at cap, 1 error",
                  "sample.careful.yml": "careful sample", "refused.yml": "53 MB refused"}
        results: dict[str, list[dict]] = {name: [] for name in files}
        for _ in range(runs):  # interleaved, so a slow patch of the machine hits every case
            for name, (path, limit) in files.items():
                results[name].append(run_child(path, work / (name + ".json"), limit))

        rows = []
        summary: dict[str, dict[str, float]] = {}
        for name, outs in results.items():
            path = files[name][0]
            ms = _common.median([o["ms"] for o in outs])
            peak = max(o["peak_delta_mb"] for o in outs)
            json_ms = _common.median([o["json_ms"] for o in outs])
            summary[name] = {"ms": ms, "peak": peak, "json_ms": json_ms, "size": path.stat().st_size}
            state = "valid" if outs[0]["ok"] else "refused"
            rows.append((labels[name], f"{path.stat().st_size / MiB:.2f}", state, ms, peak,
                         ms / json_ms if json_ms == json_ms and json_ms > 0 else float("nan")))

        print(f"settings files through settings._read_and_parse, {runs} fresh process(es) per case; "
              f"size limit {cap / MiB:g} MiB; {_common.environment_line()}")
        print(f"at cap: {count:,} candidates")
        print()
        print(_common.table(("case", "MiB", "outcome", "median ms", "peak RSS +MB", "x json.loads"), rows))
        print()
        for name in ("at-cap-error.yml", "refused.yml"):
            print(f"{labels[name]}: {results[name][0]['problems'][0] if results[name][0]['problems'] else '-'}")
        careful = summary["sample.careful.yml"]
        per_mib = careful["ms"] / (careful["size"] / MiB)
        print(f"careful parser: {per_mib / 1000:.1f} s per MiB -> about {per_mib * cap / MiB / 1000:.0f} s for a file "
              "at the cap that the fast path must leave to it (anchors, tags, `_1`-like tokens; not judged)")
        print()

        at, err, ref = summary["at-cap.yml"], summary["at-cap-error.yml"], summary["refused.yml"]
        verdicts = []
        ok = ref["ms"] < REFUSE_TARGET_MS and ref["ms"] * 10 < at["ms"]
        verdicts.append(ok)
        print(_common.verdict(ok, f"refusing a {ref['size'] / MiB:.0f} MiB file: {ref['ms']:.1f} ms (target < "
                              f"{REFUSE_TARGET_MS:.0f} ms and < 1/10 of the {at['ms']:.0f} ms parse at the cap)"))
        eighth = summary["one-mib.yml"]
        growth = (at["ms"] / at["size"]) / (eighth["ms"] / eighth["size"])
        ok = growth <= LINEAR_TARGET and at["ms"] / 1000 < STALL_TARGET_S
        verdicts.append(ok)
        print(_common.verdict(ok, f"valid file at the cap: {at['ms']:.0f} ms, "
                              f"{growth:.2f}x the time per byte of a file "
                              f"1/8 its size (target <= {LINEAR_TARGET}x: the cost grows linearly, so the cap bounds "
                              f"it) and under {STALL_TARGET_S} s, half the 5 s after which a host's lease goes stale "
                              "(the watcher parses on the host's event loop)"))
        ratio = err["ms"] / at["ms"]
        ok = ratio <= ERROR_RATIO_TARGET
        verdicts.append(ok)
        print(_common.verdict(ok, f"file at the cap with one error: worded in {err['ms']:.0f} ms = {ratio:.2f}x the "
                              f"valid parse; target <= {ERROR_RATIO_TARGET:.0f}x (the careful parser would take "
                              f"~{per_mib * cap / MiB / 1000:.0f} s)"))
        ok = at["peak"] < PEAK_TARGET_MB and err["peak"] < PEAK_TARGET_MB
        verdicts.append(ok)
        print(_common.verdict(ok, f"peak RSS increase at the cap: {at['peak']:.0f} MB valid, {err['peak']:.0f} MB with "
                              f"an error; target < {PEAK_TARGET_MB:.0f} MB"))
        _common.finish(all(verdicts), args.check)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
