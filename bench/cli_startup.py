"""Benchmark: the CLI's start-up against an earlier revision of itself (issue 13: "CLI `--help`
and `status` stay within 10% of today", today being the last commit before the CLI became the
package oneiric_core/cli/).

Both trees run on this same Python and its installed dependencies: the baseline revision is
exported with `git archive` into a temporary directory and put first on PYTHONPATH, the
checkout likewise; each environment is checked to import oneiric_core from its own tree before
anything is timed. Every measured command is a fresh `python -m oneiric_core.cli` process on a
copy of ./settings with a temporary state directory (made by an uncounted warm-up run, which
also writes the .pyc files, as an installation has them). Commands are interleaved per round
(help base, help new, status base, status new), so a noisy moment hits both alike.

Target: for `--help` and for `status`, the median of the checkout at most 1.10x the baseline's.

Usage:  .venv/bin/python bench/cli_startup.py [--quick] [--check] [--runs N] [--baseline REV]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

TARGET_RATIO = 1.10
REPO = Path(__file__).resolve().parent.parent
BASELINE = "0d7972d"  # the last commit with the CLI as oneiric_core/cli.py and its two sibling modules
COMMANDS = {"--help": ["--help"], "status": ["status"]}


def extra_args(parser) -> None:
    parser.add_argument("--runs", type=int, default=None, help="measured runs per command (default 30, --quick 5)")
    parser.add_argument("--baseline", default=BASELINE, help=f"the revision to compare with (default {BASELINE})")


def export(rev: str, into: Path) -> Path:
    """The revision's oneiric_core (and oneiric_tui, which the layering of some revisions
    needs to import) as files under `into`."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "oneiric_core", "oneiric_tui",
                           "settings"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="fully_trusted")  # our own repository's files
    return into


def environment(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "ONEIRIC_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    env["COLUMNS"] = "120"
    return env


def check_tree(env: dict[str, str], tree: Path, cwd: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import oneiric_core; print(oneiric_core.__file__)"], env=env,
                         cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"bench/cli_startup.py: PYTHONPATH={tree} imports oneiric_core from {out}, not that tree")


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench/cli_startup.py: {' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return took


def main() -> int:
    args = _common.parse_args(__doc__, extra=extra_args)
    runs = args.runs or (5 if args.quick else 30)
    print(_common.environment_line())
    with tempfile.TemporaryDirectory(prefix="oneiric-cli-startup-") as tmp:
        work = Path(tmp)
        base_tree = export(args.baseline, work / "baseline")
        trees = {"baseline": base_tree, "checkout": REPO}
        envs = {name: environment(tree) for name, tree in trees.items()}
        for name, tree in trees.items():
            check_tree(envs[name], tree, work)
        settings = work / "settings"
        shutil.copytree(REPO / "settings", settings)
        argvs = {(name, cmd): [sys.executable, "-m", "oneiric_core.cli", "--settings", str(settings), "--state-dir",
                               str(work / f"state-{name}"), *extra]
                 for name in trees for cmd, extra in COMMANDS.items()}
        for key, argv in argvs.items():  # warm-up: .pyc files, the state store
            timed(argv, envs[key[0]], work)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in argvs}
        for _ in range(runs):
            for cmd in COMMANDS:
                for name in trees:
                    samples[(name, cmd)].append(timed(argvs[(name, cmd)], envs[name], work))
    print(f"{runs} interleaved runs of each; medians in ms (baseline {args.baseline}, checkout {REPO.name})")
    print(f"{'command':<10} {'baseline':>9} {'checkout':>9} {'ratio':>7}")
    verdicts = []
    for cmd in COMMANDS:
        base = statistics.median(samples[("baseline", cmd)]) * 1000
        new = statistics.median(samples[("checkout", cmd)]) * 1000
        ratio = new / base
        verdicts.append((cmd, ratio))
        print(f"{cmd:<10} {base:>9.1f} {new:>9.1f} {ratio:>6.2f}x")
    ok = all(ratio <= TARGET_RATIO for _, ratio in verdicts)
    summary = ", ".join(f"{cmd} {ratio:.2f}x" for cmd, ratio in verdicts)
    print(_common.verdict(ok, f"the checkout's start-up against {args.baseline}: {summary} "
                              f"(target at most {TARGET_RATIO:.2f}x)"))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    main()
