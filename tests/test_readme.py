"""Every terminal session the README (and docs/troubleshooting.md) shows is run, from a fresh
state, and must print what the page says (issue 13 point 5): a quick start whose outputs drift
from the program is worse than none.

The convention: a fenced block whose info string is `console` is a session. A line starting
with `$ ` is a command, run by bash in a subprocess (so redirections work); the lines up to the
next command are its output (stdout and stderr together). A command ending in `# exit N` must
exit N, any other 0. Each session starts in an empty directory of its own (HOME there too, no
ONEIRIC_* or OTEL_* variables from outside) holding a fresh `oneiric init settings`; an HTML
comment `<!-- session: empty -->` just before the block leaves the directory empty, and
`<!-- session: host -->` runs `oneiric run` there for the length of the session.

What is compared is masked on both sides: runs of whitespace are one space (tables are aligned
to their widest value, which varies), rule lines of a table are dropped, and durations, ages,
pids, timestamps and long hex digests become placeholders. On the program's side, the
session's directory is shown as /home/alice/ops, this process's login as `alice` and the host
name as `vm`, as the pages write them.

Sessions are for what a newcomer types; anything else is a ```sh block, which is not run.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "docs/troubleshooting.md", "docs/remote.md")
SHOWN_DIR = "/home/alice/ops"
SHOWN_LOGIN = "alice"
SHOWN_HOST = "vm"
COLUMNS = "100"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        match = re.search(r"#\s*exit\s+(\d+)\s*$", self.command)
        return int(match[1]) if match else 0


@dataclass
class Session:
    page: str
    line: int  # of the opening fence, 1-based
    mode: str  # "init", "empty" or "host"
    steps: list[Step]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


_MARKER = re.compile(r"<!--\s*session:\s*(\w+)\s*-->")


def sessions(page: str) -> list[Session]:
    """The `console` blocks of `page`, in order."""
    lines = (REPO / page).read_text().splitlines()
    found: list[Session] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.fullmatch(before.strip())
        mode = marker[1] if marker else "init"
        assert mode in ("init", "empty", "host"), f"{page}:{i + 1}: unknown session mode {mode!r}"
        start, steps = i + 1, []
        i += 1
        while lines[i].strip() != "```":
            if lines[i].startswith("$ "):
                steps.append(Step(lines[i][2:]))
            else:
                assert steps, f"{page}:{i + 1}: a console block starts with output, not a '$ ' command"
                steps[-1].expected.append(lines[i])
            i += 1
        found.append(Session(page, start, mode, steps))
        i += 1
    return found


ALL = [s for page in PAGES for s in sessions(page)]


# -- masking --------------------------------------------------------------------------------------

_MASKS = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?"), "<when>"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "<hex>"),
    (re.compile(r"\bpid \d+"), "pid <n>"),
    (re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{43}="), "<key>"),  # a new ed25519 public key, base64
    (re.compile(r"\b\d+(\.\d+)? ?(ms|s|m|h|d)\b"), "<t>"),
]


def normalise(lines: list[str]) -> str:
    kept = [line for line in lines if not re.fullmatch(r"\s*[─━-]{10,}\s*", line)]
    text = " ".join(" ".join(kept).split())
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text


def as_shown(output: str, directory: Path) -> str:
    """The program's output with this machine's particulars spelt as the pages spell them."""
    login = pwd.getpwuid(os.getuid()).pw_name
    output = output.replace(str(directory), SHOWN_DIR)
    output = re.sub(rf"(?<![-\w]){re.escape(login)}(?![-\w])", SHOWN_LOGIN, output)
    return re.sub(rf"\bon {re.escape(socket.gethostname())}\b", f"on {SHOWN_HOST}", output)


# -- running ---------------------------------------------------------------------------------------

def session_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ONEIRIC_", "OTEL_", "SSH_", "TEXTUAL"))}
    env.update(HOME=str(home), COLUMNS=COLUMNS, NO_COLOR="1", TERM="dumb",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def run_step(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)


def start_host(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`oneiric run` in `cwd`, returned once it journals host-started."""
    log = cwd.parent / "host.log"
    host = subprocess.Popen(["oneiric", "run"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while '"kind":"host-started"' not in log.read_text():
        if host.poll() is not None or time.monotonic() > deadline:
            host.kill()
            raise AssertionError(f"oneiric run did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return host


def stop_host(host: subprocess.Popen[str]) -> None:
    host.send_signal(signal.SIGTERM)
    try:
        host.wait(timeout=30)
    except subprocess.TimeoutExpired:
        host.kill()
        raise


@pytest.mark.parametrize("session", ALL, ids=[s.id for s in ALL])
def test_a_shown_session_prints_what_the_page_shows(session: Session, tmp_path: Path) -> None:
    home, ops = tmp_path / "home", tmp_path / "ops"
    home.mkdir()
    ops.mkdir()
    env = session_env(home)
    if session.mode != "empty":
        made = run_step("oneiric init settings", ops, env)
        assert made.returncode == 0, made.stdout
    host = start_host(ops, env) if session.mode == "host" else None
    try:
        for step in session.steps:
            proc = run_step(step.command, ops, env)
            shown = as_shown(proc.stdout, ops)
            where = f"{session.id}: $ {step.command}"
            assert proc.returncode == step.exit_code, f"{where}: exit {proc.returncode}\n{shown}"
            assert normalise(shown.splitlines()) == normalise(step.expected), \
                f"{where}: the output differs from the page; the program printed:\n{shown}"
    finally:
        if host is not None:
            stop_host(host)


def test_the_pages_have_sessions_and_the_readme_covers_the_common_tasks() -> None:
    shown = " ".join(step.command for s in ALL if s.page == "README.md" for step in s.steps)
    for command in ("status", "explain", "remote-status", "remote-sync", "swap", "approve", "pause",
                    "activity", "resume", "drain", "health --probe"):
        assert f"oneiric {command}" in shown, f"the README shows no session of 'oneiric {command}'"
    readme = (REPO / "README.md").read_text()
    for command in ("runbook walk", "runbook drill", "incident open", "maintenance", "doctor", "completion",
                    "init", "console", "journal"):
        assert f"oneiric {command}" in readme, f"the README's cookbook has no 'oneiric {command}'"
    assert any(s.mode == "host" for s in ALL), "no session shows a command answered by a running host"


def test_the_readme_stays_a_quick_start() -> None:
    size = len((REPO / "README.md").read_bytes())
    assert size < 16_600, f"README.md is {size} bytes: the reference belongs in docs/"


# -- the console's keys -------------------------------------------------------------------------------

_KEY_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "colon": ":"}


def _binding_keys() -> dict[str, list[str]]:
    """Binding id -> its keys, from the console's classes (before any keymap)."""
    import importlib
    import inspect
    import pkgutil

    import oneiric_tui
    import oneiric_tui.widgets

    keys: dict[str, list[str]] = {}
    modules = ["oneiric_tui.app", "oneiric_tui.main_screen"] + [
        f"oneiric_tui.widgets.{m.name}" for m in pkgutil.iter_modules(oneiric_tui.widgets.__path__)]
    for name in modules:
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            for binding in getattr(cls, "BINDINGS", []):
                if getattr(binding, "id", None):
                    keys[binding.id] = [_KEY_NAMES.get(k, k) for k in binding.key.split(",")]
    return keys


def test_the_readme_keys_table_names_every_key_of_the_help() -> None:
    from oneiric_tui.keys import KEY_HELP

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| key | what it does |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"`([^`]+)`", "\n".join(line.split("|")[1] for line in table.splitlines()[2:])))
    listed |= {"1", "2", "3", "4", "5", "6"} if "`1` ... `6`" in table else set()
    bound = _binding_keys()
    missing = []
    for task in KEY_HELP:
        for row in task.rows:
            for binding_id in row.ids:
                ids = [i for i in bound if i.endswith(binding_id[1:])] if binding_id.startswith("*") \
                    else [binding_id]
                for i in ids:
                    missing += [f"{k} ({i}: {row.text})" for k in bound.get(i, []) if k not in listed]
            if row.actions == ("command_palette",) and "ctrl+p" not in listed:
                missing.append("ctrl+p (the command palette)")
    assert not missing, "keys the help shows but the README's table does not: " + "; ".join(sorted(set(missing)))


def test_commands_are_split_like_a_shell_would() -> None:
    # the pages quote arguments as a shell does; a session line that bash would misread fails here first
    for session in ALL:
        for step in session.steps:
            shlex.split(step.command, comments=True)
