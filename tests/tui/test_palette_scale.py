"""The command palette over large settings (issue 15 point 8): typed into key by key over
5,000 keys it lists the global commands, the entries of the keys the query names, and a hint
when more keys match than it lists, instead of fuzzy-matching every key's six entries."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import Input

from oneiric_core.engine import Engine
from oneiric_tui.app import OneiricApp
from oneiric_tui.palette import KEY_CAP
from tests.helpers import demo_copy, many_candidates
from tests.tui.conftest import until
from tests.tui.test_palette import close_palette, listed

KEYS = 5000


def big_app(tmp_path) -> OneiricApp:
    settings = demo_copy(tmp_path)
    (settings / "services.yml").write_text(many_candidates(KEYS))  # service/k000 ... service/k4999
    engine = Engine(settings, state_dir=tmp_path / "state", actor="tester")
    return OneiricApp(engine, autostart=False)  # the configuration only: no 5,000 activations


async def type_query(pilot, query: str) -> None:
    """Open the palette and type `query` into it one key press at a time, as an operator does."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    names = {" ": "space", "/": "slash"}
    for char in query:
        await pilot.press(names.get(char, char))
    await until(pilot, lambda: pilot.app.screen.query_one(Input).value == query)


async def test_typing_into_the_palette_over_5000_keys_lists_what_the_query_names(tmp_path):
    app = big_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: len(app.statuses) > KEYS, timeout=60)
        # a key named in part: that key's entries, first
        await type_query(pilot, "explain k4321")
        await until(pilot, lambda: listed(app)[:1] == ["Explain service/k4321"], timeout=30)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette))
        await until(pilot, lambda: str(app.main.current) == "service/k4321")
        # more keys than it lists: at most KEY_CAP keys' entries, and a line saying to type more
        await type_query(pilot, "history k1")
        # k100-k199 and k1000-k1999 (the keys are k000 ... k4999): 1,100 keys, KEY_CAP listed
        hint = f"{1100 - KEY_CAP:,} more keys match 'history k1': type more of a key's name"
        await until(pilot, lambda: hint in listed(app), timeout=30)
        entries = [t for t in listed(app) if t.startswith("History service/")]
        assert 0 < len(entries) <= KEY_CAP
        await close_palette(pilot)
        # a global command is found as on small settings, with the hint for the key commands
        await type_query(pilot, "incidents")
        await until(pilot, lambda: "Incidents" in listed(app), timeout=30)
        assert not any(t.startswith(("Explain service/", "Pause service/")) for t in listed(app))
        await close_palette(pilot)
