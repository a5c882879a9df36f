"""Benchmark: a CLI command answered by a running host, end to end.

Target: a command the host answers (pause, resume, `health --probe --key cache`) takes under
300 ms median from spawning the CLI process to its exit, Python start-up included, and is
reported as a ratio to `oneiric --help` measured in the same run (interpreter start-up plus
the CLI's own imports: the floor every command pays).

Setup: ./settings copied to a temporary directory (its state dir, `.oneiric` beside it, is
temporary too) and a real host started there with `oneiric run`, found ready through
systemd's notify protocol on a datagram socket this script binds (READY=1, i.e. every
provider started). Each measured command is a fresh process exactly as an operator runs it:
the `oneiric` console script beside this Python if there is one, else `python -m
oneiric_core.cli`, with `--settings <copy>` and no `--state-dir` (the client finds the store
from app.yml as it would in production). Every answer is checked: exit 0 and the sentence
naming the running host, so a figure can never come from the no-host path by mistake.

PYTHONDONTWRITEBYTECODE is removed from the children's environment, so the warm-up run
leaves .pyc files as any installation has them (otherwise every run would compile the
modules changed since the last byte-compile, which no operator pays).

The text probe prints a Rich table, so it also pays for importing Rich (the --json
variant does not); both count for the verdict.

Commands are interleaved per round (help, pause, resume, probe, probe --json, [status]) so a noisy moment
hits all of them alike. `status --json` is informational: a read command that loads the
settings and builds an Engine, for comparison with the socket client's path. At the end the
host gets SIGTERM and must exit 0.

Usage:  .venv/bin/python bench/cli_host.py [--quick] [--check] [--runs N]
Exits 0 (it is a report) unless --check is given and the target FAILs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

TARGET_MS = 300.0
REPO = Path(__file__).resolve().parent.parent


def extra_args(parser) -> None:
    parser.add_argument("--runs", type=int, default=None, help="measured runs per command (default 20, --quick 3)")


def cli_argv() -> tuple[list[str], str]:
    script = Path(sys.executable).parent / "oneiric"
    if script.exists():
        return [str(script)], "the oneiric console script"
    return [sys.executable, "-m", "oneiric_core.cli"], "python -m oneiric_core.cli"


class Host:
    """`oneiric run` on the copy, ready once it sends READY=1 on our notify socket."""

    def __init__(self, cli: list[str], settings: Path, workdir: Path) -> None:
        name = f"oneiric-bench-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name)
        self.log = open(workdir / "host.out", "w")
        env = {**os.environ, "NOTIFY_SOCKET": "@" + name, "ONEIRIC_OPERATOR": "bench-host"}
        env.pop("ONEIRIC_STATE_DIR", None)
        self.proc = subprocess.Popen([*cli, "--settings", str(settings), "run"], cwd=workdir, env=env,
                                     stdout=self.log, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                if "READY=1" in self.sock.recv(4096).decode().split("\n"):
                    return
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the host exited ({self.proc.returncode}): {self.proc.stderr.read()}") from None
        raise SystemExit(f"the host did not report READY=1 within {timeout:g}s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            self.sock.close()
            self.log.close()


def timed(argv: list[str], cwd: Path, env: dict[str, str], expect: str | None) -> float:
    """Wall milliseconds from spawn to exit; exits the script if the answer is not right."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0 or (expect is not None and expect not in proc.stdout):
        raise SystemExit(f"{' '.join(argv)} -> exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=extra_args)
    runs = args.runs or (3 if args.quick else 20)
    cli, how = cli_argv()
    workdir = Path(tempfile.mkdtemp(prefix="oneiric-bench-cli-"))
    try:
        settings = workdir / "settings"
        shutil.copytree(REPO / "settings", settings)
        env = {**os.environ, "ONEIRIC_OPERATOR": "bench"}
        for name in ("ONEIRIC_STATE_DIR", "PYTHONDONTWRITEBYTECODE"):  # .pyc as in any install
            env.pop(name, None)
        base = [*cli, "--settings", str(settings)]
        commands = {
            "oneiric --help (baseline)": ([*cli, "--help"], None),
            "pause --domain adapter --key cache": ([*base, "pause", "--domain", "adapter", "--key", "cache"],
                                                   "running host"),
            "resume --domain adapter --key cache": ([*base, "resume", "--domain", "adapter", "--key", "cache"],
                                                    "running host"),
            "health --probe --key cache": ([*base, "health", "--probe", "--key", "cache"], "running host"),
            "health --probe --key cache --json": ([*base, "health", "--probe", "--key", "cache", "--json"],
                                                  '"alive": true'),
        }
        if not args.quick:
            commands["status --json (info: loads settings, no host)"] = ([*base, "status", "--json"], None)
        host = Host(cli, settings, workdir)
        t0 = time.perf_counter()
        host.wait_ready()
        ready_ms = (time.perf_counter() - t0) * 1000
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command, expect in commands.values():  # one warm-up each (disk cache, .pyc)
            timed(command, workdir, env, expect)
        for _ in range(runs):
            for name, (command, expect) in commands.items():
                samples[name].append(timed(command, workdir, env, expect))
        host_exit = host.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    baseline = _common.median(samples["oneiric --help (baseline)"])
    print(f"bench/cli_host.py -- {_common.environment_line()}")
    print(f"{runs} runs per command after one warm-up, interleaved; each a fresh process ({how}); "
          f"host started with `oneiric run` and ready in {ready_ms:.0f} ms\n")
    rows = []
    for name, values in samples.items():
        med = _common.median(values)
        rows.append([name, len(values), med, _common.percentile(values, 95), min(values), max(values),
                     med / baseline])
    print(_common.table(["command", "runs", "median ms", "p95 ms", "min ms", "max ms", "x --help"], rows))
    answered = {n: _common.median(v) for n, v in samples.items() if n.startswith(("pause", "resume", "health"))}
    worst_name, worst = max(answered.items(), key=lambda item: item[1])
    print(f"\nhost stopped with SIGTERM: exit {host_exit}")
    ok = worst < TARGET_MS and host_exit == 0
    print(_common.verdict(ok, f"a CLI command answered by the host takes {worst:.0f} ms median at worst "
                              f"({worst_name}; {worst / baseline:.2f}x `oneiric --help` at {baseline:.0f} ms); "
                              f"target < {TARGET_MS:.0f} ms; the host exits 0 on SIGTERM: exit {host_exit}",
                          holds=host_exit == 0))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    main()
