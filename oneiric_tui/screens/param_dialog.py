"""Asking a walk's parameter: the values the engine knows as a list, and a box to type another.

A swap's target, a remote source, a domain, a key: oneiric_core.runbooks.param_choices says
what they can be; this dialog only lays that out. `enter` on a value sets it; `enter` on the
last line ("Type ...") moves to the box, where `enter` sets what was typed (a key that does
not exist is a fine answer: finding out why is what "Component not found" is for). An empty
box is not an answer: it says so and stays open. `esc` sets nothing; the screen that pushed
the dialog says that the walk still waits for the value.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from oneiric_core.runbooks.param_choices import ParamChoices
from oneiric_core.text import one_line, plain

from ..keys import vim_keys
from ._style import dialog_box_css

OTHER = "other"
HINT = "j/k choose, enter sets it, esc cancels"


class ParamList(OptionList):
    BINDINGS = vim_keys("param", top="first", bottom="last")


class ParamDialog(ModalScreen[str | None]):
    DEFAULT_CSS = dialog_box_css("ParamDialog") + """
    ParamDialog #param-title { text-style: bold; margin-bottom: 1; }
    ParamDialog #param-list { height: auto; max-height: 12; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="param.cancel")]

    def __init__(self, asked: ParamChoices) -> None:
        super().__init__()
        self.asked = asked

    def compose(self) -> ComposeResult:
        asked = self.asked
        with Vertical(id="dialog"):
            yield Static(plain(asked.title), id="param-title")
            options = [Option(plain(c.label), id=f"value:{n}") for n, c in enumerate(asked.choices)]
            options.append(Option(plain(asked.other), id=OTHER))
            yield ParamList(*options, id="param-list")
            yield Input(placeholder=one_line(asked.hint), id="param-input")
            yield Static(HINT, id="param-hint", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(ParamList)
        options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected, "#param-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        what, _, index = (event.option.id or "").partition(":")
        if what == "value":
            self.dismiss(self.asked.choices[int(index)].value)
        else:
            self.query_one("#param-input", Input).focus()
            self.query_one("#param-hint", Static).update("type it, enter sets it, esc cancels")

    @on(Input.Submitted, "#param-input")
    def _typed(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.query_one("#param-hint", Static).update(
                f"Nothing typed: type the {one_line(self.asked.name)}, or esc to cancel.")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
