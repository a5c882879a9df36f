"""Benchmark: `oneiric status --json` at 10,000 components, with a running host and without.

Targets (issue 15 point 8): with a host within 1.2x of the same command without one, and
either within 5x of `oneiric --help` measured in the same run.

Why both: without a host the CLI builds an Engine from the settings and reports what it
would serve; with one it also reads the host's lifecycle and health snapshots and last swaps
from the store, so its document is twice the size. The encoding of that document was the
cost (CPython's pure-Python encoder, forced by `indent`); text.json_document lays a long list
out one compact item per line and leaves the rest to the C encoder.

Setup: the demo plus generated candidates (bench/console.py's generator: four candidates per
key over six domains) in two temporary settings directories, each with its own state; a real
host started on one of them with `oneiric run` and found ready by systemd's notify protocol
(bench/cli_host.py's Host). The other state directory is one a host has run on and stopped
(started, found ready, stopped with SIGTERM before the runs), as an operator's is when no
host runs: it holds the last known health and the remote source's cached manifest, which
`status` reads with a host and without one alike. (A state directory no host ever used has
neither, so its document is half the size: until this setup that was the baseline, and the
ratio measured the first host's leftovers as much as the running one.)
Each figure is a fresh process as an operator runs it, the three commands interleaved per
round so a noisy moment hits all alike, after one warm-up each. Every answer is checked:
exit 0, and the host's document names the running host while the other says none runs,
so a figure can never come from the wrong path.

Usage:  .venv/bin/python bench/status_json.py [--quick] [--check] [--runs N] [--components N]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from cli_host import Host, cli_argv  # noqa: E402
from console import generate_settings  # noqa: E402

HOST_RATIO = 1.2
HELP_RATIO = 5.0


def extra_args(parser) -> None:
    parser.add_argument("--runs", type=int, default=None, help="measured runs per command (default 10, --quick 3)")
    parser.add_argument("--components", type=int, default=None, help="generated components (default 10000)")


def timed_status(argv: list[str], cwd: Path, env: dict[str, str], hosted: bool | None) -> float:
    """Wall milliseconds from spawn to exit; exits the script if the answer is not the expected one."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} -> exit {proc.returncode}\n{proc.stderr}")
    if hosted is not None:
        host = json.loads(proc.stdout)["host"]
        running = bool(host and host.get("alive"))
        if running != hosted:
            raise SystemExit(f"{' '.join(argv)}: expected {'a' if hosted else 'no'} running host, got {host}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=extra_args)
    runs = args.runs or (3 if args.quick else 10)
    components = args.components or (1000 if args.quick else 10_000)
    cli, how = cli_argv()
    workdir = Path(tempfile.mkdtemp(prefix="oneiric-bench-status-"))
    try:
        # apart: each settings directory keeps its state in `.oneiric` beside it
        hosted_dir, alone_dir = workdir / "hosted" / "settings", workdir / "alone" / "settings"
        keys, cands = generate_settings(hosted_dir, components)
        shutil.copytree(hosted_dir, alone_dir)
        env = {**os.environ, "ONEIRIC_OPERATOR": "bench"}
        for name in ("ONEIRIC_STATE_DIR", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        commands = {
            "oneiric --help (baseline)": ([*cli, "--help"], None),
            "status --json, no host": ([*cli, "--settings", str(alone_dir), "status", "--json"], False),
            "status --json, host running": ([*cli, "--settings", str(hosted_dir), "status", "--json"], True),
        }
        earlier = Host(cli, alone_dir, workdir)  # the no-host state: a host ran there and stopped
        earlier.wait_ready(timeout=300)
        earlier_exit = earlier.stop()
        if earlier_exit != 0:
            raise SystemExit(f"the host on the no-host copy exited {earlier_exit} on SIGTERM")
        host = Host(cli, hosted_dir, workdir)
        t0 = time.perf_counter()
        host.wait_ready(timeout=300)
        ready_s = time.perf_counter() - t0
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command, hosted in commands.values():
            timed_status(command, workdir, env, hosted)
        for _ in range(runs):
            for name, (command, hosted) in commands.items():
                samples[name].append(timed_status(command, workdir, env, hosted))
        host_exit = host.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    med = {name: _common.median(values) for name, values in samples.items()}
    baseline = med["oneiric --help (baseline)"]
    alone, hosted_ms = med["status --json, no host"], med["status --json, host running"]
    print(f"bench/status_json.py -- {_common.environment_line()}")
    print(f"{keys} generated keys, {cands} generated candidates; {runs} runs per command after one warm-up, "
          f"interleaved, each a fresh process ({how}); host ready in {ready_s:.1f} s\n")
    rows = [[name, len(v), med[name], _common.percentile(v, 95), min(v), max(v), med[name] / baseline]
            for name, v in samples.items()]
    print(_common.table(["command", "runs", "median ms", "p95 ms", "min ms", "max ms", "x --help"], rows))
    print(f"\nhost stopped with SIGTERM: exit {host_exit}")
    host_ok = hosted_ms <= HOST_RATIO * alone
    help_ok = min(alone, hosted_ms) <= HELP_RATIO * baseline
    print(_common.verdict(host_ok, f"status --json with a host takes {hosted_ms / alone:.2f}x the same without one "
                                   f"({hosted_ms:.0f} ms vs {alone:.0f} ms); target <= {HOST_RATIO}x; the host "
                                   f"exits 0 on SIGTERM: exit {host_exit}", holds=host_exit == 0))
    print(_common.verdict(help_ok, f"the faster of the two takes {min(alone, hosted_ms) / baseline:.2f}x "
                                   f"`oneiric --help` ({baseline:.0f} ms); target <= {HELP_RATIO:g}x"))
    ok = host_ok and help_ok and host_exit == 0
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    main()
