"""Help that teaches: the console's keys grouped by task, each disabled one with its reason.

Built from the live bindings (after any keymap from app.yml), so it shows the keys that
really work, and laid out from keys.KEY_HELP: "Move around", "Look, without changing
anything", "Change the highlighted component", ... Only the console's own keys (bindings
with an id) are listed, plus the few widget keys a row asks for (the arrows beside j/k);
Textual's widget internals are not. A screen that lists more nodes than the focused chain
(`help_nodes`: the main view's six panes) has every pane's keys shown, with the pane they
work in ("/ ... (in 4 Swap log)"); one that can say why an action is disabled
(`disabled_reason`: read-only, no host yet) has that reason beside the key. Keys of the
screen that no task names (another screen's own) come last, under "More keys here".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.markup import MarkupError
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from oneiric_core.text import one_line

from ..console_port import ExplainsKeys
from ..keys import KEY_HELP, HelpRow

KEY_COLUMN_MAX = 18
MORE_KEYS = "More keys here"


@dataclass(frozen=True)
class HelpSection:
    """One titled block of the help: (key display, description) rows, or (key display,
    description, why it is disabled) for a key that does nothing now."""

    title: str
    keys: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(frozen=True)
class _Bound:
    """One binding as the help sees it: where it lives and whether it works now."""

    node: DOMNode
    binding: Binding
    display: str
    pane: str | None  # the pane it works in, when only there
    reason: str | None  # why it is disabled, None when it works


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


def _action_name(action: str) -> str:
    """`screen.approve_selected` -> `approve_selected`; `focus_pane('log')` -> `focus_pane`."""
    return action.split("(", 1)[0].rsplit(".", 1)[-1]


def _node_bindings(app: App, node: DOMNode) -> list[Binding]:
    """The node's bindings with the app's keymap applied, as Textual applies it when it
    routes a key (Screen._binding_chain); done on a copy, as there."""
    bindings = node._bindings.copy()
    if app._keymap:
        bindings.apply_keymap(app._keymap)
    return [binding for _key, binding in bindings]


def _collect(app: App, screen: Screen) -> list[_Bound]:
    """Every binding of the app, the screen, the focused chain and the screen's help nodes."""
    explainer = screen if isinstance(screen, ExplainsKeys) else None
    focused = screen.focused
    chain: list[DOMNode] = list(focused.ancestors_with_self) if focused is not None else [screen, app]
    nodes: list[tuple[DOMNode, str | None]] = [(node, None) for node in chain if node not in (screen, app)]
    if explainer is not None:
        for extra in explainer.help_nodes():
            if not any(extra is node for node, _ in nodes):
                nodes.append((extra, None))
        nodes = [(node, pane_name(node) if isinstance(node, Widget) else None) for node, _ in nodes]
    nodes += [(screen, None), (app, None)]
    active = {(id(a.node), a.binding.action, a.binding.key): a.enabled for a in screen.active_bindings.values()}
    out = []
    for node, pane in nodes:
        for binding in _node_bindings(app, node):
            reason = explainer.disabled_reason(_action_name(binding.action)) if explainer is not None else None
            if reason is None and active.get((id(node), binding.action, binding.key)) is False:
                reason = "not available here"
            out.append(_Bound(node, binding, app.get_key_display(binding), pane, reason))
    return out


def _matches(row: HelpRow, bound: _Bound) -> bool:
    binding = bound.binding
    if binding.id is None:
        return _action_name(binding.action) in row.actions and isinstance(bound.node, App)
    return any(binding.id == pattern or (pattern.startswith("*.") and binding.id.endswith(pattern[1:]))
               for pattern in row.ids)


def _row_line(row: HelpRow, bound: list[_Bound], everything: list[_Bound]) -> tuple[str, ...] | None:
    """The row's keys (the console's, then the widget keys it asks for on the same panes and
    actions) and its text, with the pane when every key of it lives in one pane."""
    keys: list[str] = []
    for b in bound:
        if b.display not in keys:
            keys.append(b.display)
    for extra in row.also:
        for b in everything:
            if b.binding.key == extra and b.binding.id is None and any(
                    b.node is o.node and b.binding.action == o.binding.action for o in bound):
                if b.display not in keys:
                    keys.append(b.display)
                break
    if not keys:
        return None
    text = row.text
    if row.each:
        seen = []
        for b in bound:
            item = f"{b.display} {b.binding.description}"
            if item not in seen:
                seen.append(item)
        text = f"{text} {', '.join(seen)}"
    panes = {b.pane for b in bound}
    if len(panes) == 1 and None not in panes:
        text += f" (in {panes.pop()})"
    reasons = [b.reason for b in bound if b.reason]
    return ("/".join(keys), text, reasons[0]) if reasons else ("/".join(keys), text)


def help_sections(app: App, screen: Screen | None = None) -> list[HelpSection]:
    """The help for `screen` (the one on top by default), one section per task of
    keys.KEY_HELP that has keys here, then the screen's other keys."""
    screen = screen or app.screen
    everything = _collect(app, screen)
    used: set[int] = set()
    sections = []
    for task in KEY_HELP:
        lines = []
        for row in task.rows:
            bound = [b for b in everything if _matches(row, b)]
            used.update(id(b) for b in bound)
            line = _row_line(row, bound, everything)
            if line is not None:
                lines.append(line)
        if lines:
            sections.append(HelpSection(task.title, lines))
    more: dict[str, tuple[list[str], str | None]] = {}
    for b in everything:
        # The screen's own keys no task names: by id (internal ones have none, or no words).
        if id(b) in used or b.binding.id is None or not b.binding.description:
            continue
        described = b.binding.description + (f" (in {b.pane})" if b.pane else "")
        keys, reason = more.setdefault(described, ([], b.reason))
        if b.display not in keys:
            keys.append(b.display)
    if more:
        sections.append(HelpSection(MORE_KEYS, [("/".join(keys), text) + ((reason,) if reason else ())
                                                for text, (keys, reason) in more.items()]))
    return sections


def section_content(section: HelpSection, width: int) -> Table | Text:
    """A section's rows as two columns, the text wrapping inside its own column, a disabled
    key's reason on the line under its text. Data is plain text, never markup (keys and
    descriptions can come from a keymap in app.yml)."""
    if not section.keys:
        return Text("(no keys)")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(width=width, no_wrap=True)
    grid.add_column(ratio=1)
    for key, description, *why in section.keys:
        if why:
            text = Text(one_line(description), style="dim")
            text.append(f"\ndisabled: {one_line(why[0])}", style="italic")
            grid.add_row(Text(one_line(key), style="bold dim"), text)
        else:
            grid.add_row(Text(one_line(key), style="bold"), Text(one_line(description)))
    return grid


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
        max-width: 96;
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
        width = min(KEY_COLUMN_MAX, max((len(k) for s in self.sections for k, *_ in s.keys), default=1))
        with Vertical(id="dialog"):
            yield Static("Help: keys by task", id="title", markup=False)
            with VerticalScroll(id="sections"):
                for index, section in enumerate(self.sections):
                    yield Static(Content(one_line(section.title)), classes="section-title", id=f"section-{index}")
                    yield Static(section_content(section, width), classes="section-keys")
            yield Static("j/k: scroll   esc / q / ?: close", id="keys", markup=False)

    def action_scroll_help(self, lines: int) -> None:
        self.query_one("#sections", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
