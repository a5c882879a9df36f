"""An incident's message, ready to copy: the announcement, a status update, the all-clear.

`M` in the incident panel or the incidents view opens it on the kind that fits (announce
before any message was prepared, update after; resolved once the incident is mitigated or
closed); `a`, `u` and `r` switch kinds. The words come from oneiric_core.runbooks.messages
(the templates in settings, filled from the incident); this screen only shows them. `c`
copies the text with OSC 52 (Textual's App.copy_to_clipboard: the terminal, even over SSH,
puts it on the operator's clipboard) and records the message on the timeline as prepared,
which moves the next update's due time on by the severity's cadence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from oneiric_core.errors import OneiricError
from oneiric_core.runbooks import messages
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.text import plain

from ._style import dialog_box_css

if TYPE_CHECKING:
    from ..console_port import ConsoleState

KINDS = {"a": "announce", "u": "update", "r": "resolved"}


class MessageScreen(ModalScreen[None]):
    DEFAULT_CSS = dialog_box_css("MessageScreen") + """
    MessageScreen #dialog { max-width: 100; }
    MessageScreen #message-title { text-style: bold; }
    MessageScreen #message-box { height: auto; max-height: 18; border: round $panel-lighten-2; padding: 0 1; }
    """
    BINDINGS = [
        Binding("a", "kind('announce')", "Announce", id="message.announce"),
        Binding("u", "kind('update')", "Update", id="message.update"),
        Binding("r", "kind('resolved')", "Resolved", id="message.resolved"),
        Binding("c", "copy", "Copy (OSC 52)", id="message.copy"),
        Binding("escape", "close", "Close", id="message.close"),
    ]

    def __init__(self, incident_id: int, kind: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.kind = kind or ""
        self.message: messages.Message | None = None

    @property
    def oneiric(self) -> ConsoleState:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(id="message-title")
            with VerticalScroll(id="message-box"):
                yield Static(id="message-text")
            yield Static("a announce, u update, r resolved; c copies it (OSC 52) and records it on the timeline; "
                         "esc closes", classes="hint")

    def on_mount(self) -> None:
        if not self.kind:
            self.kind = self._fitting_kind()
        self._show()

    def _incidents(self) -> Incidents:
        return Incidents(self.oneiric.engine)

    def _fitting_kind(self) -> str:
        try:
            incidents = self._incidents()
            inc = incidents.get(self.incident_id)
        except OneiricError:
            return "announce"
        if inc.status != "open":
            return "resolved"
        sent = any(e.kind == "message" for e in incidents.entries(inc.id))
        return "update" if sent else "announce"

    def _show(self) -> None:
        title = self.query_one("#message-title", Static)
        body = self.query_one("#message-text", Static)
        try:
            self.message = messages.compose(self._incidents(), self.incident_id, self.kind, "text",
                                            now=self.oneiric.clock())
        except OneiricError as exc:
            self.message = None
            title.update(plain(f"Incident #{self.incident_id}: no {self.kind} message"))
            body.update(plain(str(exc)))
            return
        title.update(plain(f"Incident #{self.incident_id}: the {self.kind} message"))
        body.update(plain(self.message.text, multiline=True))

    def action_kind(self, kind: str) -> None:
        self.kind = kind
        self._show()

    def action_copy(self) -> None:
        message = self.message
        if message is None:
            self.notify("There is no message to copy here.", severity="warning")
            return
        app = self.oneiric
        self.app.copy_to_clipboard(message.text)
        if app.can_change:
            try:
                messages.record(self._incidents(), message, actor=app.engine.actor,
                                delivered=f"copied to the clipboard (OSC 52) by {app.engine.actor}", ts=app.clock())
            except OneiricError as exc:
                self.notify(f"Copied, but not recorded on the timeline: {exc}", severity="warning", markup=False)
                return
        self.notify(f"The {message.kind} message of incident #{message.incident} is on the clipboard"
                    + (" and on its timeline." if app.can_change else "."), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
