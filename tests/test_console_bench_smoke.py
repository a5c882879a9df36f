"""The console benchmark and the screenshot script still run, each as a subprocess.

No timing is asserted (the machines are noisy and `--quick` figures mean nothing): this
only checks that `bench/console.py --quick` exits 0 and prints its tables and verdicts
(and `--scale --quick`, the console and the headless host on 400 candidates), none of them
a `FAIL:` (under --quick a target on speed or size prints `SKIP:`; what must hold at any
size, such as the swap log's bound, still FAILs), and
that `screenshots/make_screenshots.py --out DIR` writes the six SVGs.
About 25 s together on a 2-vCPU VM.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TABLE_HEADERS = (
    ("app", "runs", "first frame ms", "ratio", "Engine()", "app to frame"),
    ("app", "RSS MB at first frame", "RSS MB after activation"),
    ("phase", "presses", "key median ms", "key p95 ms", "key max ms"),
)
VERDICTS = ("cold start, demo", "cold start,", "event storm", "swap log bounded", "memory,")
SCALE_HEADERS = ("host", "runs", "activation s", "ratio", "worst stall ms", "stall ratio", "RSS MB after activation")
SCALE_VERDICTS = ("activation,", "loop stall during activation", "memory,")
SCREENSHOTS = ("main-120x40.svg", "main-80x24.svg", "swap-picker-120x40.svg", "approval-120x40.svg",
               "rollback-120x40.svg", "help-120x40.svg")


def test_console_bench_runs_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "console.py"), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    for columns in TABLE_HEADERS:
        assert any(all(col in line for col in columns) for line in lines), \
            f"no table header with {columns} in:\n{proc.stdout}"
    _assert_verdicts(lines, VERDICTS, proc.stdout)


def test_console_scale_bench_runs_quick() -> None:
    """The 50,000-component run (`make bench`, not `make test`) at 400 candidates: both hosts
    run, the table and its three verdicts are printed (SKIP on the targets, which mean nothing
    at this size; a key not ready in a run is a FAIL at any size), and the exit code is 0."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "console_scale.py"), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert any(all(col in line for col in SCALE_HEADERS) for line in lines), proc.stdout
    for host in ("headless host (oneiric run)", "console 120x40"):
        row = next((line for line in lines if line.startswith(host)), None)
        assert row is not None and row.split()[-1] == "0/1", f"{host}: no row, or keys not ready:\n{proc.stdout}"
    _assert_verdicts(lines, SCALE_VERDICTS, proc.stdout)


def _assert_verdicts(lines: list[str], expected: tuple[str, ...], stdout: str) -> None:
    """A verdict line about each of `expected`, and not one `FAIL:` line."""
    verdicts = [line for line in lines if re.match(r"^(PASS|SKIP|FAIL): ", line)]
    for what in expected:
        assert any(what in line for line in verdicts), f"no verdict line about {what!r} in:\n{stdout}"
    failed = [line for line in verdicts if line.startswith("FAIL:")]
    assert not failed, "\n".join(failed)


def test_make_screenshots_writes_six_svgs(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    proc = subprocess.run(
        [sys.executable, str(REPO / "screenshots" / "make_screenshots.py"), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    for name in SCREENSHOTS:
        path = out / name
        assert path.is_file(), f"{name} not written; stdout:\n{proc.stdout}"
        assert "<svg" in path.read_text(encoding="utf-8"), f"{name} is not an SVG"
