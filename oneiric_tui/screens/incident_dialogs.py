"""The two questions an incident asks: its severity when it is opened, and how it ended.

`SeverityDialog` opens an incident on purpose (`o` in a walk) or before a walk's first step
that changes something (oneiric_core.runbooks.walk_incident): the severities with what each
means (the response target in force), the walk's severity highlighted; `enter` opens the
incident with the highlighted one, `esc` opens none (and the step that asked is not taken).

`CloseIncidentDialog` asks what `oneiric incident close` takes: the resolution (needed), the
root cause and the follow-ups (`;` between them). `enter` goes to the next box and, in the
last, closes; `esc` closes nothing. Both dialogs only ask: the screen that pushed them acts.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from oneiric_core.text import one_line, plain

from ..keys import vim_keys
from ._style import dialog_box_css


class SeverityList(OptionList):
    BINDINGS = vim_keys("severity", top="first", bottom="last")


class SeverityDialog(ModalScreen[str | None]):
    DEFAULT_CSS = dialog_box_css("SeverityDialog") + """
    SeverityDialog #severity-title { text-style: bold; }
    SeverityDialog #severity-body { margin: 1 0; }
    SeverityDialog #severities { height: auto; max-height: 8; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="severity.cancel")]

    def __init__(self, title: str, body: str, choices: list[tuple[str, str]], preselected: str) -> None:
        super().__init__()
        self._title, self._body = title, body
        self._choices = choices
        self._preselected = preselected

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(self._title), id="severity-title")
            yield Static(plain(self._body, multiline=True), id="severity-body")
            yield SeverityList(*(Option(plain(text), id=sev) for sev, text in self._choices),
                               id="severities")
            yield Static("j/k choose, enter opens the incident, esc opens none", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(SeverityList)
        ids = [sev for sev, _ in self._choices]
        options.highlighted = ids.index(self._preselected) if self._preselected in ids else 0
        options.focus()

    @on(OptionList.OptionSelected, "#severities")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


FIELDS = (("resolution", "Resolution (needed)", "what fixed it"),
          ("root_cause", "Root cause", "why it happened, if known"),
          ("follow_ups", "Follow-ups", "what to do so it does not happen again; separate them with ;"))


class CloseIncidentDialog(ModalScreen[dict[str, Any] | None]):
    DEFAULT_CSS = dialog_box_css("CloseIncidentDialog") + """
    CloseIncidentDialog #close-title { text-style: bold; margin-bottom: 1; }
    CloseIncidentDialog #close-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="close.cancel")]

    def __init__(self, incident_id: int, title: str, *, root_cause: str = "",
                 follow_ups: list[str] | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self._title = title
        self._initial = {"resolution": "", "root_cause": root_cause, "follow_ups": "; ".join(follow_ups or [])}

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain(f"Close incident #{self.incident_id}: {one_line(self._title)}"), id="close-title")
            for name, label, hint in FIELDS:
                yield Static(label, classes="label")
                yield Input(value=self._initial[name], placeholder=hint, id=f"close-{name}")
            yield Static("", id="close-error")
            yield Static("enter: next box; in the last one, closes the incident. esc: closes nothing",
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one("#close-resolution", Input).focus()

    def values(self) -> dict[str, Any]:
        get = {name: self.query_one(f"#close-{name}", Input).value.strip() for name, _, _ in FIELDS}
        follow_ups = [f.strip() for f in get["follow_ups"].split(";") if f.strip()]
        return {"resolution": get["resolution"], "root_cause": get["root_cause"], "follow_ups": follow_ups}

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        names = [f"close-{name}" for name, _, _ in FIELDS]
        index = names.index(event.input.id or "")
        if index < len(names) - 1:
            self.query_one(f"#{names[index + 1]}", Input).focus()
            return
        values = self.values()
        if not values["resolution"]:
            self.query_one("#close-error", Static).update("Closing an incident needs a resolution.")
            self.query_one("#close-resolution", Input).focus()
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
