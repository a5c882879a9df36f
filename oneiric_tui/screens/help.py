"""Context-sensitive help: the keys of the focused pane first, then the global ones.

Built from the live binding map (`Screen.active_bindings`) rather than a hand-kept list,
so it always shows the keys that really work now, including user remaps, and marks the
ones read-only mode has disabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.markup import MarkupError
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from oneiric_core.text import one_line

DISABLED_SUFFIX = " (disabled: read-only)"
KEY_COLUMN_MAX = 18


@dataclass(frozen=True)
class HelpSection:
    """One titled block of the help screen: (key display, description) rows."""

    title: str
    keys: list[tuple[str, str]] = field(default_factory=list)


def pane_name(widget: Widget) -> str:
    """What the operator calls the pane: the nearest `border_title`, else the class name."""
    node: object = widget
    while isinstance(node, Widget) and not isinstance(node, Screen):
        title = node.border_title
        if title:
            try:
                return Content.from_markup(str(title)).plain
            except MarkupError:
                return str(title)
        node = node.parent
    return type(widget).__name__


def help_sections(app: App) -> list[HelpSection]:
    """The help for whatever is on screen now: "Focused: <pane>" then "Global".

    Keys bound to the same action on the same node ("j" and "down") share one row, described
    by the console's binding where there is one. The console's own keys come before the ones
    a widget brings by default. Bindings without a description are internal and skipped.
    """
    screen = app.screen
    focused = screen.focused
    rows: dict[tuple[int, str, bool], list[str]] = {}
    descriptions: dict[tuple[int, str, bool], str] = {}
    ours: dict[tuple[int, str, bool], bool] = {}  # has a binding id: the console's key, not a widget default
    is_global: dict[tuple[int, str, bool], bool] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description:
            continue
        group = (id(active.node), binding.action, bool(active.enabled))
        display = app.get_key_display(binding)  # plain ASCII in the console (OneiricApp)
        if display not in rows.setdefault(group, []):
            rows[group].append(display)
        if binding.id is not None or group not in descriptions:
            descriptions[group] = binding.description
        ours[group] = ours.get(group, False) or binding.id is not None
        is_global[group] = isinstance(active.node, (Screen, App))

    def section(title: str, want_global: bool) -> HelpSection:
        keys = []
        # The console's own keys first (j/k, enter, /, ...), then what the widget brings by default.
        for group in sorted(rows, key=lambda g: not ours[g]):
            if is_global[group] != want_global:
                continue
            enabled = group[2]
            description = descriptions[group]
            keys.append(("/".join(rows[group]), description if enabled else description + DISABLED_SUFFIX))
        return HelpSection(title=title, keys=keys)

    sections = []
    if focused is not None:
        sections.append(section(f"Focused: {pane_name(focused)}", want_global=False))
    sections.append(section("Global", want_global=True))
    return sections


def section_content(section: HelpSection, width: int) -> Content:
    """A section's rows as two aligned columns; data is plain text, never markup (keys and
    descriptions can come from a keymap in app.yml)."""
    if not section.keys:
        return Content("(no keys)")
    lines = [Content.assemble((one_line(key).ljust(width), "bold"), "  ", one_line(description))
             for key, description in section.keys]
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    """Shows `HelpSection`s in a scrollable box; `escape`, `q` or `?` close it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close help", id="help.close"),
        Binding("j", "scroll_help(1)", "Scroll down", id="help.down"),
        Binding("k", "scroll_help(-1)", "Scroll up", id="help.up"),
    ]

    AUTO_FOCUS = "#sections"

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen #dialog {
        width: 100%;
        max-width: 76;
        height: auto;
        max-height: 100%;
        border: solid $primary;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen #title {
        text-style: bold;
    }
    HelpScreen #sections {
        height: auto;
        max-height: 80vh;
    }
    HelpScreen .section-title {
        text-style: bold underline;
        margin-top: 1;
    }
    HelpScreen #keys {
        color: $text-muted;
    }
    """

    def __init__(self, sections: list[HelpSection]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        width = min(KEY_COLUMN_MAX, max((len(k) for s in self.sections for k, _ in s.keys), default=1))
        with Vertical(id="dialog"):
            yield Static("Help: keys", id="title", markup=False)
            with VerticalScroll(id="sections"):
                for index, section in enumerate(self.sections):
                    yield Static(Content(one_line(section.title)), classes="section-title", id=f"section-{index}")
                    yield Static(section_content(section, width), classes="section-keys")
            yield Static("j/k: scroll   esc / q / ?: close", id="keys", markup=False)

    def action_scroll_help(self, lines: int) -> None:
        self.query_one("#sections", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
