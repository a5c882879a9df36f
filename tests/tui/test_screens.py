"""Pilot tests for the modal screens: what each key does, and that each renders at 80x24.

Every screen is pushed from a tiny host app with a callback that records the result, the
way the console pushes them, so "dismissed with X" is asserted on what the caller sees.
Rendering is checked on the exported screenshot text, so a `[` in data that broke the
markup, or a dialog that did not fit, would show up as missing words.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static

from oneiric_tui.screens import (
    ApprovalDialog,
    ConfirmDialog,
    HelpScreen,
    HelpSection,
    PickerOption,
    SwapChoice,
    SwapPicker,
    help_sections,
)

_UNSET = object()


class Pane(Static, can_focus=True):
    """A focusable stand-in for a console pane, with one key the read-only mode disables."""

    BINDINGS = [
        Binding("j", "noop", "Move down", id="pane.down"),
        Binding("s", "swap", "Swap", id="pane.swap"),
        Binding("x", "noop", "", id="pane.hidden"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "swap" else True

    def action_noop(self) -> None:
        pass

    def action_swap(self) -> None:
        pass


class Host(App[None]):
    """Pushes one screen on start and records what it was dismissed with."""

    BINDINGS = [Binding("question_mark", "noop", "Help", id="app.help")]

    def __init__(self, screen: Screen[Any] | None = None) -> None:
        super().__init__()
        self._to_push = screen
        self.result: Any = _UNSET

    def compose(self) -> ComposeResult:
        pane = Pane("live pane", id="pane")
        pane.border_title = "Components"
        yield pane

    def on_mount(self) -> None:
        if self._to_push is not None:
            self.push_screen(self._to_push, self._record)

    def _record(self, result: Any) -> None:
        self.result = result

    def action_noop(self) -> None:
        pass


def screen_text(app: App[Any]) -> str:
    """The visible text of the screen (from the SVG screenshot), spaces dropped."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)
    return "".join(html.unescape(p) for p in parts).replace("\xa0", "").replace(" ", "")


def has_words(app: App[Any], *words: str) -> None:
    text = screen_text(app)
    missing = [w for w in words if w.replace(" ", "") not in text]
    assert not missing, f"not on screen: {missing}"


# -- swap picker -------------------------------------------------------------------------

OPTIONS = [
    PickerOption("redis", "local", 1, "selected in adapters.yml", True, "ok", "2 ms"),
    PickerOption("memory", "builtin", 2, "shadowed by [bold]priority[/]", False, "degraded", "slow [x]"),
    PickerOption("memcached", "remote:prod", 3, "lower stack level", False, "failed", "refused"),
]


async def test_picker_starts_on_first_non_serving_and_enter_chooses_it() -> None:
    app = Host(SwapPicker("adapter/cache", OPTIONS))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.screen.query_one(OptionList).highlighted == 1
        await pilot.press("enter")
        await pilot.pause()
    assert app.result == SwapChoice(provider="memory", source="builtin", force=False)


async def test_picker_j_moves_and_f_sets_force() -> None:
    app = Host(SwapPicker("adapter/cache", OPTIONS))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("j", "f")
        assert "force: on" in str(app.screen.query_one("#force", Static).render())
        await pilot.press("k", "j", "enter")
        await pilot.pause()
    assert app.result == SwapChoice(provider="memcached", source="remote:prod", force=True)


async def test_picker_can_choose_the_serving_one() -> None:
    app = Host(SwapPicker("adapter/cache", OPTIONS))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("k", "enter")
        await pilot.pause()
    assert app.result == SwapChoice(provider="redis", source="local", force=False)


@pytest.mark.parametrize("key", ["escape", "q"])
async def test_picker_cancel_returns_none(key: str) -> None:
    app = Host(SwapPicker("adapter/cache", OPTIONS))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, SwapPicker)
    assert app.result is None


async def test_picker_renders_data_literally_at_80x24() -> None:
    app = Host(SwapPicker("adapter/cache", OPTIONS))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        has_words(
            app, "Swap adapter/cache to...", "redis (local)", "(serving)", "OK - 2 ms",
            "DEGRADED - slow [x]", "shadowed by [bold]priority[/]", "FAILED", "force: off",
            "> 2. memory",
        )


async def test_picker_with_no_options_only_cancels() -> None:
    app = Host(SwapPicker("adapter/cache", []))
    async with app.run_test() as pilot:
        await pilot.pause()
        has_words(app, "No candidates")
        await pilot.press("enter", "j")
        assert isinstance(app.screen, SwapPicker)
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


# -- approval dialog ---------------------------------------------------------------------


def approval(*, high_risk: bool = False) -> ApprovalDialog:
    return ApprovalDialog(
        ref_label="adapter/cache", key="cache", from_provider="redis", to_provider="mem[x]",
        to_source="builtin", reason="operator asked [urgent]", blockers=["probe [stale]"],
        force=True, high_risk=high_risk, risk_reasons=["serves all traffic", "no [fallback]"],
    )


async def test_approval_focus_starts_on_cancel_and_enter_never_approves() -> None:
    app = Host(approval())
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")
        await pilot.pause()
    assert app.result is False


async def test_approval_y_approves() -> None:
    app = Host(approval())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.result is True


@pytest.mark.parametrize("key", ["n", "escape"])
async def test_approval_n_and_escape_reject(key: str) -> None:
    app = Host(approval())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
    assert app.result is False


async def test_approval_click_on_approve_approves() -> None:
    app = Host(approval())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.click("#approve")
        await pilot.pause()
    assert app.result is True


async def test_approval_summary_renders_at_80x24() -> None:
    app = Host(approval())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        has_words(
            app, "Component", "adapter/cache", "From", "redis", "mem[x] (builtin)",
            "operator asked [urgent]", "- probe [stale]", "yes (skips the health gate)",
            "Cancel", "[y] Approve",
        )
        assert not app.screen.query("#confirm-key")


async def test_high_risk_y_does_nothing_until_the_key_is_typed() -> None:
    app = Host(approval(high_risk=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "cancel"
        has_words(app, "WARNING high risk", "no [fallback]", "[y] Approve (locked)")
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ApprovalDialog)
        has_words(app, "type the key name first")

        await pilot.press("tab")
        assert isinstance(app.focused, Input)
        await pilot.press(*"cash", "enter")
        assert app.focused.id == "cancel"
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ApprovalDialog)
    assert app.result is _UNSET


async def test_high_risk_y_and_n_type_into_the_box() -> None:
    app = Host(approval(high_risk=True))
    async with app.run_test() as pilot:
        await pilot.pause()
        box = app.screen.query_one("#confirm-key", Input)
        box.focus()
        await pilot.press("y", "n")
        assert box.value == "yn"
        assert isinstance(app.screen, ApprovalDialog)
    assert app.result is _UNSET


async def test_high_risk_right_key_enter_then_y_approves() -> None:
    app = Host(approval(high_risk=True))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("tab", *"cache")
        assert isinstance(app.screen, ApprovalDialog)  # typing "c...e" decides nothing
        has_words(app, "[y] Approve")
        await pilot.press("enter")
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("y")
        await pilot.pause()
    assert app.result is True


async def test_high_risk_escape_cancels_even_from_the_box() -> None:
    app = Host(approval(high_risk=True))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("tab", "escape")
        await pilot.pause()
    assert app.result is False


# -- confirm dialog ----------------------------------------------------------------------


def confirm() -> ConfirmDialog:
    return ConfirmDialog("Drain adapter/cache?", "New work waits; [running] work finishes.", "Drain")


async def test_confirm_core_rules() -> None:
    app = Host(confirm())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "cancel"
        has_words(app, "Drain adapter/cache?", "[running] work finishes", "[y] Drain", "Cancel")
        await pilot.press("enter")
        await pilot.pause()
    assert app.result is False


@pytest.mark.parametrize(("key", "expected"), [("y", True), ("n", False), ("escape", False)])
async def test_confirm_keys(key: str, expected: bool) -> None:
    app = Host(confirm())
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
    assert app.result is expected


async def test_confirm_keymap_changes_the_key_and_its_label() -> None:
    app = Host(confirm())
    app.set_keymap({"confirm.yes": "a"})
    async with app.run_test() as pilot:
        await pilot.pause()
        has_words(app, "[a] Drain")
        await pilot.press("y")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("a")
        await pilot.pause()
    assert app.result is True


# -- help --------------------------------------------------------------------------------


async def test_help_sections_from_the_running_app() -> None:
    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        app.query_one(Pane).focus()
        sections = help_sections(app)
    # grouped by task (keys.KEY_HELP); keys no task names come last, under their own words
    assert [s.title for s in sections] == ["Move around", "The console", "More keys here"]
    assert ("j", "Down / up a line") in sections[0].keys
    assert ("?", "This help") in sections[1].keys
    more = sections[2].keys
    # disabled, by a screen that cannot say why: it says so, never "read-only"
    assert ("s", "Swap", "not available here") in more
    assert not any(key == "x" for key, *_ in more)  # no description: internal


async def test_help_screen_lists_sections_scrolls_and_closes() -> None:
    sections = [
        HelpSection("Focused: Swap log", [("/", "Filter [lines]"), ("j/k", "Move")]),
        HelpSection("Global", [(str(n), f"Pane number {n}") for n in range(1, 30)]),
    ]
    app = Host(HelpScreen(sections))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        has_words(app, "Focused: Swap log", "Filter [lines]", "Global", "Pane number 1")
        await pilot.press("j", "j")
        assert app.screen.query_one("#sections").scroll_y == 2
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
    assert app.result is None


@pytest.mark.parametrize("key", ["q", "question_mark"])
async def test_help_screen_closes_on_q_and_question_mark(key: str) -> None:
    app = Host(HelpScreen([HelpSection("Global", [("q", "Quit")])]))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


# -- every screen without colour ---------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: SwapPicker("adapter/cache", OPTIONS), ["DEGRADED", "(serving)", "> 2."]),
        (lambda: approval(high_risk=True), ["WARNING", "(locked)", "Cancel"]),
        (confirm, ["[y] Drain", "Cancel"]),
        (lambda: HelpScreen([HelpSection("Global", [("q", "Quit")])]), ["Global", "Quit"]),
    ],
)
async def test_screens_render_with_no_color(monkeypatch: pytest.MonkeyPatch, make: Any, words: list[str]) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = Host(make())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.no_color
        has_words(app, *words)


async def test_dialogs_leave_the_live_panes_updating() -> None:
    """A modal sits over the console: panes underneath keep rendering new data."""
    app = Host(approval(high_risk=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one(Pane).update("tick 42")
        await pilot.pause()
        assert isinstance(app.screen, ApprovalDialog)
        has_words(app, "tick 42")
