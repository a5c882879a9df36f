"""Looks: the main screen at 120x40 and 80x24, and the approval dialog.

The app runs with `autostart=False` (configuration shown, no providers started) from a
settings copy in the working directory, so nothing on screen depends on time, latency,
process ids or temp paths (a started app, its panes populated, is compared in
tests/tui/test_started_snapshots.py). Regenerate after an intended change with
`.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from oneiric_tui.screens.approval_dialog import ApprovalDialog
from oneiric_tui.screens.incident import IncidentScreen
from oneiric_tui.screens.swap_picker import SwapPicker
from oneiric_tui.widgets.detail import DetailPane
from tests.helpers import demo_copy
from tests.tui.conftest import until


@pytest.fixture
def still_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    settings = demo_copy(tmp_path)
    engine = Engine("settings", state_dir=tmp_path / "state", actor="operator")
    assert settings.exists()
    return OneiricApp(engine, autostart=False)


async def upkeep_read(pilot) -> None:
    """The header's maintenance count is read in a thread after the first frame: wait for it."""
    await until(pilot, lambda: pilot.app.upkeep is not None)
    # the tree highlights its first key once mounted, and Explain shows it
    await until(pilot, lambda: pilot.app.main.current is not None
                and pilot.app.main.query_one(DetailPane).shown is not None)
    await pilot.pause()


def test_main_screen_120x40(snap_compare, still_app):
    assert snap_compare(still_app, run_before=upkeep_read, terminal_size=(120, 40))


def test_main_screen_80x24(snap_compare, still_app):
    assert snap_compare(still_app, run_before=upkeep_read, terminal_size=(80, 24))


def test_approval_dialog(snap_compare, still_app):
    async def open_dialog(pilot):
        await upkeep_read(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, SwapPicker))
        picker = pilot.app.screen
        picker.query_one("OptionList").highlighted = next(
            i for i, o in enumerate(picker.options) if o.provider == "redis")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, ApprovalDialog))
        await pilot.pause()

    assert snap_compare(still_app, run_before=open_dialog, terminal_size=(120, 40))


def test_incident_runbook_picker(snap_compare, still_app):
    async def open_incidents(pilot):
        await upkeep_read(pilot)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(pilot.app.screen, IncidentScreen))
        await pilot.pause()

    assert snap_compare(still_app, run_before=open_incidents, terminal_size=(120, 40))
