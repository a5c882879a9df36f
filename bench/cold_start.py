"""Benchmark: what leaving out yaml-rs (the `fast` extra) costs `oneiric status` from a cold start.

Target: `oneiric --settings <demo> status` without yaml-rs takes at most 1.5x the median of the
same command with it (measured in the same run). yaml-rs is optional since issue 13: without it
ruamel.yaml's safe loader parses the settings (oneiric_core/settings.py `_fast_loader`), which is
~30x slower on a megabyte of settings but on the demo's few kilobytes mostly costs its import.
1.5x is the line where a plain `pip install oneiric-console` would start to feel slower than the
fast extra to an operator typing commands; the figure itself is what to read.

Setup: ./settings copied to a temporary directory, its state directory temporary too (created by
the uncounted warm-up run, so every measured run finds an existing store, as an operator does).
Every measured command is a fresh process exactly as an operator runs it: the `oneiric` console
script beside this Python if there is one, else `python -m oneiric_core.cli`. "Without yaml-rs"
puts a directory on PYTHONPATH whose `sitecustomize.py` installs an import hook refusing
`yaml_rs` (as if it were not installed); "with" gets a `sitecustomize.py` that does nothing, so
both pay the same start-up. Before timing, each environment is checked: `oneiric version --json`
must name the parser it is meant to use. PYTHONDONTWRITEBYTECODE is removed from the children's
environment (the warm-up leaves .pyc files, as any installation has them).

Commands are interleaved per round (help with, help without, status with, status without, and the
same for `status --json`) so a noisy moment hits all of them alike. `--help` is the floor every
command pays (the CLI never parses YAML for it), so its ratio shows the noise.

Usage:  .venv/bin/python bench/cold_start.py [--quick] [--check] [--runs N]
Exits 0 (it is a report) unless --check is given and the target FAILs.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

TARGET_RATIO = 1.5
REPO = Path(__file__).resolve().parent.parent

# The one blocker both this bench and tests/test_without_yaml_rs.py install as sitecustomize.
BLOCKER = (Path(__file__).resolve().parent.parent / "tests" / "no_yaml_rs" / "sitecustomize.py").read_text()
NOOP = '"""Installed by bench/cold_start.py: the same start-up as the blocker, blocking nothing."""\n'


def extra_args(parser) -> None:
    parser.add_argument("--runs", type=int, default=None, help="measured runs per command (default 20, --quick 3)")


def cli_argv() -> list[str]:
    script = Path(sys.executable).parent / "oneiric"
    return [str(script)] if script.exists() else [sys.executable, "-m", "oneiric_core.cli"]


def environments(workdir: Path) -> dict[str, dict[str, str]]:
    base = {**os.environ, "ONEIRIC_OPERATOR": "bench", "COLUMNS": "120"}
    for name in ("ONEIRIC_STATE_DIR", "ONEIRIC_SETTINGS", "PYTHONDONTWRITEBYTECODE"):
        base.pop(name, None)
    envs = {}
    for label, source in (("with yaml-rs", NOOP), ("without yaml-rs", BLOCKER)):
        site = workdir / label.replace(" ", "-")
        site.mkdir()
        (site / "sitecustomize.py").write_text(source)
        envs[label] = {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), base.get("PYTHONPATH")]))}
    return envs


def parser_in(cli: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([*cli, "version", "--json"], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"oneiric version --json -> exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)["settings_parser"]


def timed(argv: list[str], cwd: Path, env: dict[str, str], expect: str) -> float:
    """Wall milliseconds from spawn to exit; exits the script if the answer is not right."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0 or expect not in proc.stdout:
        raise SystemExit(f"{' '.join(argv)} -> exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=extra_args)
    runs = args.runs or (3 if args.quick else 20)
    cli = cli_argv()
    workdir = Path(tempfile.mkdtemp(prefix="oneiric-bench-cold-"))
    try:
        settings = workdir / "settings"
        shutil.copytree(REPO / "settings", settings)
        envs = environments(workdir)
        print(f"cold start of `oneiric status` with and without yaml-rs; {_common.environment_line()}")
        print(f"{runs} runs per command after one warm-up, interleaved; CLI: {' '.join(cli)}")
        found = {label: parser_in(cli, env, workdir) for label, env in envs.items()}
        print("settings parser: " + ", ".join(f"{label}: {name}" for label, name in found.items()))
        if found["with yaml-rs"] != "yaml-rs":
            print(_common.verdict(False, "yaml-rs is not installed here (pip install -e '.[fast]'): "
                                  "nothing to compare"))
            _common.finish(False, args.check)
        if found["without yaml-rs"] != "ruamel.yaml":
            raise SystemExit("the import hook did not keep yaml_rs out")
        base = [*cli, "--settings", str(settings), "--state-dir", str(workdir / "state")]
        commands = {
            "oneiric --help": ([*cli, "--help"], "usage:"),
            "status": ([*base, "status"], "COMPONENT"),
            "status --json": ([*base, "status", "--json"], '"components"'),
        }
        times: dict[tuple[str, str], list[float]] = {(c, e): [] for c in commands for e in envs}
        for round_no in range(runs + 1):
            for name, (argv_, expect) in commands.items():
                for label, env in envs.items():
                    ms = timed(argv_, workdir, env, expect)
                    if round_no:  # round 0 is the warm-up
                        times[(name, label)].append(ms)
        rows, ratios = [], {}
        for name in commands:
            with_ms = _common.median(times[(name, "with yaml-rs")])
            for label in envs:
                values = times[(name, label)]
                med = _common.median(values)
                ratio = med / with_ms
                if label == "without yaml-rs":
                    ratios[name] = ratio
                rows.append((f"{name} ({label})", len(values), med, _common.percentile(values, 95),
                             min(values), max(values), ratio))
        print()
        print(_common.table(("command", "runs", "median ms", "p95 ms", "min ms", "max ms", "x with yaml-rs"), rows))
        print()
        ratio = ratios["status"]
        with_ms = _common.median(times[("status", "with yaml-rs")])
        without_ms = _common.median(times[("status", "without yaml-rs")])
        ok = ratio <= TARGET_RATIO
        print(_common.verdict(ok, f"`oneiric status` on the demo takes {without_ms:.0f} ms median without yaml-rs, "
                              f"{with_ms:.0f} ms with it ({ratio:.2f}x; --help {ratios['oneiric --help']:.2f}x); "
                              f"target <= {TARGET_RATIO}x"))
        _common.finish(ok, args.check)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    main()
