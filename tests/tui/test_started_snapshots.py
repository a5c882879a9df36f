"""Looks of a started console: the main screen at 120x40 and 80x24 once the demo's eight
providers run, every pane populated (tree, Explain, Health, Swap log).

tests/tui/test_snapshots.py compares SVGs of an app that never starts (`autostart=False`),
so it shows placeholders: no provider serving, empty Health and Swap log. This one starts
the real engine on a copy of the demo and compares what the terminal shows, as text, with a
stored snapshot. What a run cannot repeat is masked, each mask keeping the layout around it:
timings (`12.3 ms` becomes `~ms`), clock times and ages, the host's pid, the sparklines'
bars, the temporary directory, how much work is in flight at that instant, and which key
each of the swap log's activation lines names (the eight keys start concurrently and
complete in any order). Everything else, which pane shows what, at which size, cut where,
must match.

The demo's providers are deterministic (built-in, in-memory or a scratch directory; the
health interval is an hour, so no probe runs while the screen is read). Regenerate after an
intended change with
`.venv/bin/python -m pytest tests/tui/test_started_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from tests.helpers import demo_copy
from tests.tui.conftest import ready, until

_BARS = "▁▂▃▄▅▆▇█"
_MASKS = (
    (re.compile(r"\d+(?:\.\d+)? ms\b *"), "~ms "),  # a timing, and the padding its width leaves
    (re.compile(r"(?<= )\d+[smh](?= )"), "~t"),  # an age (Health's CHANGED)
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "hh:mm:ss"),
    # The pid, and whether it shows at all: at 80 columns a 5-digit pid makes the header give it up.
    (re.compile(r" pid \d+"), ""),
    # a key in use at that instant (the demo's scheduler runs tasks), blanked in place
    (re.compile(r"  \d+ in flight\b"), lambda m: " " * len(m.group())),
    (re.compile(r"\d+(?= in flight)"), "n"),  # the heading of Explain: "ready, active, 0 in flight"
    (re.compile(r"(?<=LATENCY) +"), " "),  # a check of 100 ms or more widens the column
    (re.compile(rf"(~ms |trend +)[{_BARS}]+"), r"\1▒▒"),  # a sparkline (a scrollbar's thumb stays)
)
# A start's activations complete in any order: which key a line names, and so which ones
# are scrolled out of view, differs from run to run. How many lines, and where, does not.
_ACTIVATION = re.compile(r"^(│\d\d:\d\d:\d\d i info  swap-complete +operator  ).* activated with .*?(.{3})$")


def masked_screen(app: OneiricApp, tmp: Path) -> str:
    """The screen as lines of text, with what a run cannot repeat masked (module docstring).
    A mask may shorten its line: a line that ends in a pane's border is padded back to its
    width, so the borders stay where the screen has them."""
    lines = []
    for strip in app.screen._compositor.render_strips():
        raw = strip.text
        activation = _ACTIVATION.match(raw)
        if activation:
            head, tail = activation.groups()
            raw = (head + "<key> activated with <provider>").ljust(len(raw) - 3) + tail
        line = raw.replace(str(tmp), "<tmp>")
        for pattern, mask in _MASKS:
            line = pattern.sub(mask, line)
        if line.endswith("│") and len(line) < len(raw):
            line = line[:-1].ljust(len(raw) - 1) + "│"
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


@pytest.fixture
def started_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    demo_copy(tmp_path)
    return OneiricApp(Engine("settings", state_dir=tmp_path / "state", actor="operator"))


async def _started_screen(app: OneiricApp, size: tuple[int, int], tmp: Path, pane: str = "") -> str:
    async with app.run_test(size=size) as pilot:
        await ready(pilot)  # host mode, eight keys ready
        await until(pilot, lambda: app.upkeep is not None)  # the header's maintenance count
        await until(pilot, lambda: any("watcher-started" == e.kind for e in app.main.query_one("SwapLog")
                                       .visible_events()))  # the last event of a start
        if pane:
            await pilot.press(pane)
            await until(pilot, lambda: app.main.active_pane() == {"3": "health"}[pane])
        await pilot.pause()
        return masked_screen(app, tmp)


async def test_started_main_screen_120x40(started_app, tmp_path, snapshot):
    assert await _started_screen(started_app, (120, 40), tmp_path) == snapshot


async def test_started_main_screen_80x24(started_app, tmp_path, snapshot):
    assert await _started_screen(started_app, (80, 24), tmp_path) == snapshot


async def test_started_health_pane_80x24(started_app, tmp_path, snapshot):
    """At 80 columns one pane shows at a time: the Health pane, populated."""
    assert await _started_screen(started_app, (80, 24), tmp_path, pane="3") == snapshot
