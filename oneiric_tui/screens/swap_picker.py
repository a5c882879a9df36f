"""The swap picker: choose which candidate should serve a component next.

It shows each candidate with what the operator needs to choose well: its rank, where it
comes from, why the resolver ranked it there, its last known health (as a word, so the
list reads the same without colour; a candidate never bound keeps its last health gate), and
how often it failed lately ("rolled back 3x in 15 min"). It only *chooses*; the app turns the choice into a
proposal and the approval dialog, so nothing is swapped from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from oneiric_core.text import one_line

from ..format import HEALTH
from ._style import dialog_box_css


@dataclass(frozen=True)
class SwapChoice:
    """What the operator picked: the target candidate, whether to skip the health gate, and
    whether to keep it (write the selection into settings once the swap completes)."""

    provider: str
    source: str
    force: bool
    keep: bool = False


@dataclass(frozen=True)
class PickerOption:
    """One candidate as the picker shows it (built by the app from the explain ranking)."""

    provider: str
    source: str
    rank: int
    reason: str
    serving: bool
    health: str  # "ok" | "degraded" | "failed" | "unknown"
    health_message: str
    failures: str = ""  # "rolled back 3x in 15 min" (candidate_record.py), "" when none


def option_prompt(option: PickerOption, *, cursor: bool = False) -> Content:
    """Three lines for one candidate (four when it failed lately); `cursor` adds a `>` so the
    highlight shows without colour.

    Every value comes from data, so it is assembled as plain text (oneiric_core.text), never
    parsed as markup.
    """
    symbol, word, style = HEALTH.get(option.health, ("?", (option.health or "unknown").upper(), "dim"))
    marker = ">" if cursor else " "
    head = Content.assemble(
        f"{marker} {option.rank}. ",
        (one_line(option.provider), "bold"),
        f" ({one_line(option.source)})",
        ("  (serving)" if option.serving else "", "bold"),
    )
    message = one_line(option.health_message.strip())
    health = Content.assemble("     health: ", (f"{symbol} {word}", style), f" - {message}" if message else "")
    why = Content.assemble("     why: ", one_line(option.reason or "-"))
    lines = [head, health, why]
    if option.failures:
        lines.insert(2, Content.assemble("     lately: ", (one_line(option.failures), "yellow bold")))
    return Content("\n").join(lines)


def first_choice(options: list[PickerOption]) -> int | None:
    """Where the highlight starts: the first candidate that is not already serving."""
    for index, option in enumerate(options):
        if not option.serving:
            return index
    return 0 if options else None


class SwapPicker(ModalScreen[SwapChoice | None]):
    """Pick a swap target; dismisses with a `SwapChoice`, or None when cancelled.

    Choosing the serving candidate is allowed: the engine answers it with a no-op, which is
    clearer than a picker that silently refuses.
    """

    BINDINGS = [
        Binding("j", "cursor_down", "Down", id="swap_picker.down"),
        Binding("k", "cursor_up", "Up", id="swap_picker.up"),
        Binding("enter", "choose", "Choose", id="swap_picker.choose"),
        Binding("f", "toggle_force", "Force", id="swap_picker.force"),
        Binding("w", "toggle_keep", "Keep (write to settings)", id="swap_picker.keep"),
        Binding("escape,q", "cancel", "Cancel", id="swap_picker.cancel"),
    ]

    DEFAULT_CSS = dialog_box_css("SwapPicker") + """
    SwapPicker #title {
        text-style: bold;
    }
    SwapPicker #candidates {
        height: auto;
        max-height: 16;
        border: none;
        margin: 1 0;
    }
    SwapPicker #keep.-on, SwapPicker #force.-on {
        text-style: bold;
        color: $warning;
    }
    SwapPicker #keys {
        color: $text-muted;
    }
    """

    def __init__(self, ref_label: str, options: list[PickerOption], *, title: str | None = None,
                 allow_force: bool = True, allow_keep: bool = True) -> None:
        super().__init__()
        self.ref_label = ref_label
        self.title_text = title or f"Swap {ref_label} to..."
        self.allow_force = allow_force
        self.allow_keep = allow_keep  # off where the pick is written to settings anyway (`e`)
        self.options = list(options)
        self.force = False
        self.keep = False
        self._marked: int | None = None
        # Guards against a second dismiss (key repeat). Not `_closed`: MessagePump owns that
        # name, and setting it makes the screen's removal hang forever.
        self._answered = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(one_line(self.title_text)), id="title")
            if self.options:
                prompts: list[Option | None] = []
                for index, option in enumerate(self.options):
                    if index:
                        prompts.append(None)  # separator line between candidates
                    prompts.append(Option(option_prompt(option)))
                yield OptionList(*prompts, id="candidates")
            else:
                yield Static("No candidates to swap to.", id="empty", markup=False)
            if self.allow_force:
                yield Static(self._force_text(), id="force", markup=False)
            if self.allow_keep:
                yield Static(self._keep_text(), id="keep", markup=False)
            force_key = "   f: force" if self.allow_force else ""
            keep_key = "   w: keep" if self.allow_keep else ""
            yield Static(f"j/k: move   enter: choose{force_key}{keep_key}   esc / q: cancel", id="keys", markup=False)

    def on_mount(self) -> None:
        start = first_choice(self.options)
        if start is not None:
            candidates = self.query_one("#candidates", OptionList)
            candidates.highlighted = start
            self._mark(start)
            candidates.focus()

    def _force_text(self) -> str:
        return f"force: {'on' if self.force else 'off'} (skips the health gate)"

    def _keep_text(self) -> str:
        return ("keep: on (written into settings once the swap completes)" if self.keep else
                "keep: off (a restart brings the ranked winner back)")

    def _mark(self, index: int | None) -> None:
        """Move the `>` marker to the highlighted option."""
        candidates = self.query_one("#candidates", OptionList)
        if self._marked is not None and self._marked != index:
            candidates.replace_option_prompt_at_index(
                self._marked, option_prompt(self.options[self._marked])
            )
        if index is not None:
            candidates.replace_option_prompt_at_index(index, option_prompt(self.options[index], cursor=True))
        self._marked = index

    @on(OptionList.OptionHighlighted, "#candidates")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index != self._marked:
            self._mark(event.option_index)

    @on(OptionList.OptionSelected, "#candidates")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option_index)

    def _choose(self, index: int | None) -> None:
        if self._answered or index is None or not 0 <= index < len(self.options):
            return
        option = self.options[index]
        self._answered = True
        self.dismiss(SwapChoice(provider=option.provider, source=option.source, force=self.force, keep=self.keep))

    # -- actions ---------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        if self.options:
            self.query_one("#candidates", OptionList).action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.options:
            self.query_one("#candidates", OptionList).action_cursor_up()

    def action_choose(self) -> None:
        if self.options:
            self._choose(self.query_one("#candidates", OptionList).highlighted)

    def action_toggle_keep(self) -> None:
        if self.allow_keep:
            self.keep = not self.keep
            self._show_toggle("#keep", self._keep_text(), self.keep)

    def action_toggle_force(self) -> None:
        if self.allow_force:
            self.force = not self.force
            self._show_toggle("#force", self._force_text(), self.force)

    def _show_toggle(self, line_id: str, text: str, on: bool) -> None:
        line = self.query_one(line_id, Static)
        line.update(text)
        line.set_class(on, "-on")

    def action_cancel(self) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(None)
