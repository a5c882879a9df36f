"""Contexts (issue 18 point 5): named places in a small file, used by `--context`, listed and
switched by `oneiric ctx` and `:ctx` in the console."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.helpers import demo_copy


@pytest.fixture
def contexts_file(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = demo_copy(tmp_path / "a"), demo_copy(tmp_path / "b")
    path = tmp_path / "contexts.yml"
    path.write_text(f"contexts:\n  alpha: {{settings: {a}, state_dir: {tmp_path / 'state-a'}}}\n"
                    f"  beta: {{settings: {b}, state_dir: {tmp_path / 'state-b'}, node: edge-2}}\n")
    return path


def test_ctx_lists_switches_and_context_points_a_command_at_one(contexts_file: Path, tmp_path: Path, run_cli):
    env = {"ONEIRIC_CONTEXTS": str(contexts_file)}
    listed = run_cli("ctx", env=env, settings=None, state_dir=None)
    assert listed.returncode == 0 and listed.stdout.splitlines() == [
        f"  alpha: settings {tmp_path / 'a' / 'settings'}, store {tmp_path / 'state-a'}",
        f"  beta: settings {tmp_path / 'b' / 'settings'}, store {tmp_path / 'state-b'}, node edge-2"], listed.stdout
    switched = run_cli("ctx", "beta", env=env, settings=None, state_dir=None)
    assert switched.stdout.startswith("Current context: beta: ")
    assert run_cli("ctx", env=env, settings=None, state_dir=None).stdout.splitlines()[1].startswith("* beta")
    assert stat.S_IMODE(os.stat(contexts_file).st_mode) == 0o600  # written private
    status = run_cli("--context", "beta", "status", "--json", env=env, settings=None, state_dir=None)
    assert status.returncode == 0, str(status)
    assert json.loads(status.stdout)["state_dir"] == str(tmp_path / "state-b")


def test_a_context_that_does_not_exist_or_a_broken_file_is_one_sentence(contexts_file: Path, run_cli):
    env = {"ONEIRIC_CONTEXTS": str(contexts_file)}
    res = run_cli("--context", "gamma", "status", env=env, settings=None, state_dir=None)
    assert res.returncode == 2 and res.stderr.strip() == (
        f"oneiric: No context 'gamma' in {contexts_file} (its contexts: alpha, beta).")
    contexts_file.write_text("contexts:\n  alpha: {state_dir: /tmp}\n")
    res = run_cli("ctx", env=env, settings=None, state_dir=None)
    assert res.returncode == 2 and res.stderr.strip() == (
        f"oneiric: {contexts_file}: context 'alpha' needs 'settings' (a settings directory).")


async def test_ctx_in_the_console_lists_the_contexts_and_switches_after_asking(contexts_file: Path, monkeypatch,
                                                                              tmp_path: Path) -> None:
    from oneiric_core.engine import Engine
    from oneiric_tui.app import OneiricApp
    from oneiric_tui.screens.confirm import ConfirmDialog
    from tests.tui.conftest import ready, until
    from tests.tui.test_command_line import type_command

    monkeypatch.setenv("ONEIRIC_CONTEXTS", str(contexts_file))
    app = OneiricApp(Engine(tmp_path / "a" / "settings", state_dir=tmp_path / "console", actor="tester"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await type_command(pilot, "ctx")
        await until(pilot, lambda: any("alpha: settings" in n.message and "beta: settings" in n.message
                                       for n in app._notifications))
        await type_command(pilot, "ctx beta")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: app.switch_context == "beta" and app._stopped, timeout=20)
