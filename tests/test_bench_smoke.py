"""The benchmark scripts still run: each one, with --quick, as a subprocess.

No timing is asserted here (the machines are noisy); the figures themselves are read by a
person from `make bench`. This checks that the scripts exit 0, print their table and a
verdict, and print no `FAIL:` line: under --quick a target on speed or size is not judged
(`SKIP:`, bench/_common.verdict), so a `FAIL:` there is something that must hold at any
size (every event arrived, the journal intact, the host exited 0) and fails this test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import require_pg

REPO = Path(__file__).resolve().parent.parent

CASES = {
    "resolve.py": ("N", "layout", "resolve ns/call", "dict ns/call", "f(k) ns/call", "ratio", "flatness"),
    "swap.py": ("phase", "median ms", "p95 ms"),
    "cli_host.py": ("command", "runs", "median ms", "p95 ms", "x --help"),
    "cold_start.py": ("command", "runs", "median ms", "p95 ms", "x with yaml-rs"),
    "watcher.py": ("measure", "saves", "median ms", "p95 ms", "x watchdog"),
    "remote.py": ("measure", "runs", "median ms", "p95 ms", "x json.loads"),
    "engine_load.py": ("phase", "median ms", "min", "max", "share of Engine()"),
    "journal_append.py": ("append", "unchained us", "chained us", "ratio"),
    "settings_size.py": ("case", "MiB", "outcome", "median ms", "peak RSS +MB", "x json.loads"),
    "prune.py": ("prune", "rows pruned", "worst stall ms", "MB before", "MB after", "verify"),
    "cli_startup.py": ("command", "baseline", "checkout", "ratio"),
    "store_pg.py": ("operation", "sqlite", "postgresql", "ratio"),
    "fleet_push.py": ("reader", "events", "median ms", "p95 ms", "max ms"),
    "rollout.py": ("rollout", "nodes", "wall ms", "swaps ms (baseline)", "overhead ms/node"),
    "fleet_view.py": ("app", "runs", "median ms", "ratio", "to first frame"),
}


# They measure the PostgreSQL backend (tests/pg.py).
NEEDS_PG = {"store_pg.py", "fleet_push.py", "rollout.py", "fleet_view.py"}

# Further runs of a script with options (each also --quick): the script, its arguments.
VARIANTS = {"swap.py --exporter otlp": ("swap.py", ["--exporter", "otlp"])}


@pytest.mark.parametrize("script", [*sorted(CASES), *VARIANTS])
def test_bench_script_runs_quick(script: str) -> None:
    script, options = VARIANTS.get(script, (script, []))
    if script in NEEDS_PG:
        require_pg()
    if script == "cli_startup.py" and not _have_baseline():
        pytest.skip("bench/cli_startup.py compares with an earlier commit, which this (shallow) clone lacks")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--quick", *options],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    header = next((line for line in lines if all(col in line for col in CASES[script])), None)
    assert header is not None, f"no table header in:\n{proc.stdout}"
    assert any(re.match(r"^(PASS|SKIP): ", line) for line in lines), f"no verdict line in:\n{proc.stdout}"
    failed = [line for line in lines if line.startswith("FAIL:")]
    assert not failed, f"{script} --quick: " + "\n".join(failed)


def _have_baseline() -> bool:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from cli_startup import BASELINE
    finally:
        sys.path.pop(0)
    return subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BASELINE}^{{commit}}"],
                          capture_output=True).returncode == 0
