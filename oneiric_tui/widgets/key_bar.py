"""The key bar: the keys of whatever has focus, on the bottom line, as one widget.

Textual's Footer shows the same thing with one widget per key, and rebuilds all of them
(mount, style, lay out, paint) every time the bindings change, which happens at start-up
and on every focus change. In the console that was about 45 ms of a 190 ms start-up to
first frame (bench/console.py). This is a single widget that renders one line of text
from `Screen.active_bindings`, redrawn when the screen signals that they changed:

* every binding with `show=True`, one per action, as `key Description`;
* a binding whose action is disabled (read-only mode, an action that does not apply right
  now) is dimmed; pressing or clicking it does nothing but say why (the main view's flash);
* the command palette key at the right end, as the Footer has it;
* a click on a key presses that key.

When the line is wider than the terminal, the keys listed last before help and quit are left
out (the focused pane's own keys come first and stay) and `...` says so; `? Help` and
`q Quit` always stay, and so does the palette key.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget

from ..console_port import ExplainsKeys

# Keys that stay on the bar however narrow the terminal: the way to every other key, and out.
ALWAYS_SHOWN = frozenset({"question_mark", "q"})


class KeyEntry(NamedTuple):
    key: str  # as Textual names it ("question_mark"): what a click presses
    shown: str  # as the bar shows it ("?")
    description: str
    enabled: bool


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyBar > .key-bar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .key-bar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    KeyBar > .key-bar--disabled {
        text-style: dim;
    }
    """

    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--disabled"}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: object) -> None:
        self.refresh()

    def entries(self) -> list[KeyEntry]:
        """Each key on the bar, left to right; the command palette key last."""
        app = self.app
        active = self.screen.active_bindings
        palette = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        seen: set[str] = set()
        out: list[KeyEntry] = []
        for key, (_node, binding, enabled, _tooltip) in active.items():
            if not binding.show or binding.action in seen or key == palette:
                continue
            seen.add(binding.action)
            out.append(KeyEntry(binding.key, app.get_key_display(binding), binding.description, enabled))
        if palette is not None and palette in active:
            _node, binding, enabled, _tooltip = active[palette]
            out.append(KeyEntry(binding.key, app.get_key_display(binding), binding.description, enabled))
        return out

    def render(self) -> Text:
        entries = self.entries()
        palette = None
        if entries and self.app.ENABLE_COMMAND_PALETTE and entries[-1].key == self.app.COMMAND_PALETTE_BINDING:
            palette = entries.pop()
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        disabled_style = self.get_component_rich_style("key-bar--disabled")
        width = self.size.width or 80

        right = Text()
        if palette is not None:
            right = self._entry(palette, key_style, description_style, disabled_style)
        room = max(0, width - right.cell_len - (1 if right else 0))
        texts = [(entry.key, self._entry(entry, key_style, description_style, disabled_style)) for entry in entries]
        kept = [text for key, text in texts if key not in ALWAYS_SHOWN]
        always = [text for key, text in texts if key in ALWAYS_SHOWN]
        dropped = False

        def width_of(parts: list[Text]) -> int:
            return sum(part.cell_len for part in parts) + len(parts) - 1 if parts else 0

        # Too long: the keys listed last before help and quit go first (the focused pane's own
        # keys come first and stay); `...` says that `?` lists them.
        while kept and width_of(kept + ([Text("...")] if kept else []) + always) > room:
            kept.pop()
            dropped = True
        parts = kept + ([Text("...", style=description_style)] if dropped else []) + always
        left = Text(no_wrap=True, overflow="ellipsis", end="")
        for index, part in enumerate(parts):
            if index:
                left.append(" ")
            left.append_text(part)
        if left.cell_len > room:
            left.truncate(room, overflow="ellipsis")
        left.append(" " * (width - left.cell_len - right.cell_len))
        left.append_text(right)
        return left

    @staticmethod
    def _entry(entry: KeyEntry, key_style: Style, description_style: Style, disabled_style: Style) -> Text:
        meta = Style(meta={"key-bar": entry.key})  # what a click on it presses
        extra = Style() if entry.enabled else disabled_style
        text = Text(entry.shown, style=key_style + extra + meta)
        if entry.description:
            text.append(f" {entry.description}", style=description_style + extra + meta)
        return text

    def on_click(self, event: events.Click) -> None:
        """A click presses the key. A disabled key is pressed too where the screen says why a
        key is disabled (the main view flashes "read-only: ..."); elsewhere it rings the bell."""
        key = event.style.meta.get("key-bar") if event.style else None
        if key is None:
            return
        enabled = next((e.enabled for e in self.entries() if e.key == key), False)
        if enabled or isinstance(self.screen, ExplainsKeys):
            self.app.simulate_key(key)
        else:
            self.app.bell()
