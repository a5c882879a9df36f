"""CLI conventions (issue 13 point 2): global options before or after the command, an example
in every command's help, shell completion for bash, zsh and fish, one ExitCode enum.

Every command line here is a real `python -m oneiric_core.cli` subprocess; the completion
scripts run in real shells (bash directly; zsh and fish in a real terminal through tmux, where
those shells are installed: .ci/run installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric_core.cli.main import build_parser
from oneiric_core.cli.parser import leaf_parsers
from oneiric_core.errors import ExitCode, NotFound, RemoteSyncFailed, SwapRefused, Unhealthy, UsageError

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oneiric_core.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_global_options_work_after_the_command(demo_settings, tmp_path, cli_env):
    state = tmp_path / "state"
    before = cli("--settings", str(demo_settings), "--state-dir", str(state), "status", "--json",
                 cwd=tmp_path, env=cli_env)
    after = cli("status", "--json", "--settings", str(demo_settings), "--state-dir", str(state),
                cwd=tmp_path, env=cli_env)
    assert before.returncode == after.returncode == 0, after.stderr
    first, second = json.loads(before.stdout), json.loads(after.stdout)
    assert second["settings_dir"] == str(demo_settings) and second["state_dir"] == str(state)
    assert [c["key"] for c in first["components"]] == [c["key"] for c in second["components"]]


def test_read_only_after_the_command_refuses_the_change(demo_settings, tmp_path, cli_env):
    state = tmp_path / "state"
    res = cli("pause", "--key", "cache", "--read-only", "--settings", str(demo_settings), "--state-dir", str(state),
              cwd=tmp_path, env=cli_env)
    assert res.returncode == ExitCode.ERROR and "read-only" in res.stderr.lower(), res.stderr
    activity = cli("activity", "--json", "--settings", str(demo_settings), "--state-dir", str(state),
                   cwd=tmp_path, env=cli_env)
    assert json.loads(activity.stdout)["activity"] == []  # nothing was paused


def test_a_global_option_after_a_nested_action(demo_settings, tmp_path, cli_env):
    res = cli("runbook", "list", "--json", "--settings", str(demo_settings), cwd=tmp_path, env=cli_env)
    assert res.returncode == 0, res.stderr
    assert any(r["id"] == "remote-sync" for r in json.loads(res.stdout)["runbooks"])


def test_the_value_given_last_wins_and_an_unknown_option_is_still_a_usage_error(demo_settings, tmp_path, cli_env):
    res = cli("--settings", str(tmp_path / "nowhere"), "status", "--json", "--settings", str(demo_settings),
              "--state-dir", str(tmp_path / "state"), cwd=tmp_path, env=cli_env)
    assert res.returncode == 0 and json.loads(res.stdout)["settings_dir"] == str(demo_settings)
    bad = cli("status", "--no-such-flag", cwd=tmp_path, env=cli_env)
    assert bad.returncode == ExitCode.USAGE and bad.stderr.count("\n") == 1 and "--no-such-flag" in bad.stderr


def test_every_command_has_an_example_in_its_help():
    leaves = leaf_parsers(build_parser())
    assert len(leaves) > 30  # every command and action
    lacking = [" ".join(words) for words, parser in leaves if not parser.examples]
    assert lacking == []
    for words, parser in leaves:
        assert all(line.startswith("oneiric ") or "oneiric " in line for line in parser.examples), words


def test_help_ends_with_its_examples(tmp_path, cli_env):
    res = cli("swap", "--help", cwd=tmp_path, env=cli_env)
    assert res.returncode == 0
    tail = res.stdout.rstrip().split("\n")
    assert "examples:" in tail and tail[-1].strip().startswith("oneiric swap --key cache")
    assert "global options (before or after the command)" in res.stdout


def test_exit_codes_are_one_enum():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 130]
    assert (UsageError.exit_code, NotFound.exit_code, Unhealthy.exit_code, SwapRefused.exit_code,
            RemoteSyncFailed.exit_code) == (ExitCode.USAGE, ExitCode.NOT_FOUND, ExitCode.UNHEALTHY,
                                            ExitCode.SWAP_REFUSED, ExitCode.REMOTE)
    # no module declares its own numbers any more
    declared = [str(p.relative_to(ROOT)) for p in (ROOT / "oneiric_core").rglob("*.py")
                if "EXIT_OK = 0" in p.read_text() or "range(7)" in p.read_text()]
    assert declared == []


# -- completion ---------------------------------------------------------------------------------

def complete(*words: str, cwd: Path, env: dict[str, str]) -> list[str]:
    res = cli("__complete", "oneiric", *words, cwd=cwd, env=env)
    assert res.returncode == 0 and res.stderr == ""
    return res.stdout.split()


def test_complete_commands_flags_and_names(demo_settings, tmp_path, cli_env):
    env = {**cli_env, "ONEIRIC_SETTINGS": str(demo_settings)}
    assert complete("sta", cwd=tmp_path, env=env) == ["status"]
    assert {"remote-status", "remote-sync"} <= set(complete("rem", cwd=tmp_path, env=env))
    assert complete("incident", "c", cwd=tmp_path, env=env) == ["close"]
    assert {"--key", "--domain", "--json", "--settings", "--state-dir"} <= set(complete("status", "--", cwd=tmp_path,
                                                                                        env=env))
    assert complete("status", "--domain", "", cwd=tmp_path, env=env) == \
        ["action", "adapter", "event", "service", "task", "workflow"]
    keys = complete("status", "--domain", "adapter", "--key", "", cwd=tmp_path, env=env)
    assert "cache" in keys and "storage" in keys and "runner" not in keys  # runner is a workflow
    # providers of the key given: the built-in ones and memory-large from the demo's adapters.yml
    assert complete("swap", "--key", "cache", "--provider", "", cwd=tmp_path, env=env) == \
        ["memory", "memory-large", "redis", "sqlite"]
    assert complete("completion", "", cwd=tmp_path, env=env) == ["bash", "fish", "zsh"]
    assert complete("explain", "ca", cwd=tmp_path, env=env) == ["cache"]  # the key as a word, upstream's way


def test_complete_reads_the_settings_named_on_the_line(demo_settings, tmp_path, cli_env):
    adapters = demo_settings / "adapters.yml"
    adapters.write_text(adapters.read_text().replace("provider: memory-large", "provider: memory-huge"))
    words = complete("--settings", str(demo_settings), "swap", "--key", "cache", "--provider", "memory-",
                     cwd=tmp_path, env=cli_env)
    assert words == ["memory-huge"]
    # a broken settings directory answers nothing, quietly
    (demo_settings / "adapters.yml").write_text("candidates: [\n")
    assert "memory-huge" not in complete("--settings", str(demo_settings), "swap", "--key", "cache", "--provider",
                                         "", cwd=tmp_path, env=cli_env)


def _script(shell: str, tmp_path: Path, env: dict[str, str]) -> Path:
    res = cli("completion", shell, cwd=tmp_path, env=env)
    assert res.returncode == 0
    path = tmp_path / f"oneiric.{shell}"
    path.write_text(res.stdout)
    return path


@pytest.fixture
def oneiric_on_path(tmp_path, cli_env, demo_settings) -> dict[str, str]:
    """An `oneiric` on PATH that runs this checkout's CLI (as the installed script does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "oneiric"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m oneiric_core.cli \"$@\"\n")
    script.chmod(0o755)
    return {**cli_env, "PATH": f"{bin_dir}:{cli_env.get('PATH', '')}", "ONEIRIC_SETTINGS": str(demo_settings),
            "PYTHONPATH": str(ROOT)}


def test_bash_completion_in_a_real_bash(tmp_path, oneiric_on_path):
    script = _script("bash", tmp_path, oneiric_on_path)
    probe = (f'source {script}\n'
             'COMP_WORDS=(oneiric swap --key cache --provider mem); COMP_CWORD=5; _oneiric\n'
             'echo "providers:${COMPREPLY[*]}"\n'
             'COMP_WORDS=(oneiric ru); COMP_CWORD=1; _oneiric; echo "commands:${COMPREPLY[*]}"\n'
             'COMP_WORDS=(oneiric status --key = ca); COMP_CWORD=4; _oneiric; echo "split:${COMPREPLY[*]}"\n'
             'complete -p oneiric\n')
    res = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True, env=oneiric_on_path,
                         cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "providers:memory memory-large" in lines
    assert "commands:run runbook" in lines
    assert "split:cache" in lines
    assert "complete -o default -F _oneiric oneiric" in lines


def _tmux_tab(shell_argv: list[str], typed: str, tmp_path: Path, env: dict[str, str]) -> str:
    """Type `typed` and a Tab into a real shell in a tmux pane; the screen after."""
    session = f"oneiric-complete-{os.getpid()}-{time.monotonic_ns()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "20", *shell_argv], env=env,
                   cwd=tmp_path, check=True, timeout=30)
    try:
        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                  timeout=10).stdout

        deadline = time.monotonic() + 60  # compinit on a loaded CI machine can take a while
        while "READY>" not in screen() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "READY>" in screen(), f"the shell never showed its prompt (its rc file not read?):\n{screen()}"
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", typed], check=True, timeout=10)
        subprocess.run(["tmux", "send-keys", "-t", session, "Tab"], check=True, timeout=10)
        shown = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = screen()
            if "memory-large" in shown or "remote-status" in shown:
                break
            time.sleep(0.2)
        return shown
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)


@pytest.mark.skipif(shutil.which("tmux") is None or shutil.which("zsh") is None,
                    reason="zsh and tmux are needed (.ci/run installs them: apt-get install zsh tmux)")
def test_zsh_completion_in_a_real_terminal(tmp_path, oneiric_on_path):
    script = _script("zsh", tmp_path, oneiric_on_path)
    zdot = tmp_path / "zdot"
    zdot.mkdir()
    (zdot / ".zshrc").write_text(f"autoload -U compinit && compinit -u\nsource {script}\nPS1='READY> '\n")
    env = {**oneiric_on_path, "ZDOTDIR": str(zdot), "TERM": "xterm-256color"}
    shown = _tmux_tab(["zsh", "-i"], "oneiric swap --key cache --provider memory", tmp_path, env)
    assert "memory-large" in shown, shown


@pytest.mark.skipif(shutil.which("tmux") is None or shutil.which("fish") is None,
                    reason="fish and tmux are needed (.ci/run installs them: apt-get install fish tmux)")
def test_fish_completion_in_a_real_terminal(tmp_path, oneiric_on_path):
    script = _script("fish", tmp_path, oneiric_on_path)
    config = tmp_path / "xdg" / "fish"
    config.mkdir(parents=True)
    (config / "config.fish").write_text(f"source {script}\nfunction fish_prompt; echo -n 'READY> '; end\n"
                                        "set -g fish_greeting ''\n")
    env = {**oneiric_on_path, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TERM": "xterm-256color"}
    shown = _tmux_tab(["fish", "-i"], "oneiric swap --key cache --provider memory", tmp_path, env)
    assert "memory-large" in shown, shown
