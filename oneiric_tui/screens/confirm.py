"""Yes/no dialogs that a stray key cannot confirm.

Operators confirm destructive prompts with `enter` out of muscle memory, and key repeat or
escape-sequence residue over SSH can deliver keys nobody meant. So every dialog here:

* opens with focus on a real `Cancel` button, so `enter` cancels;
* confirms only with the `y` key (or a deliberate mouse click on the confirm control), and
  that control is a `Static`, not a `Button`, so `enter` can never reach it;
* cancels with `n` and `escape`.

`GuardedDialog` carries those rules; `ConfirmDialog` is the plain version used for pause,
drain, resume, approve/reject and quitting the host. `ApprovalDialog` adds typed
confirmation for high-risk swaps on top of the same base.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from oneiric_core.text import multi_line, one_line

from ._style import dialog_box_css


class GuardedDialog(ModalScreen[bool]):
    """Base of the confirm and approval dialogs: dismisses True only on a deliberate `y`.

    Subclasses declare their own `BINDINGS` (so each binding has its own remappable id)
    pointing at the `accept`, `reject` and `cancel` actions, set `ACCEPT_ID` /
    `ACCEPT_BINDING_ID`, and yield their content from `compose_body`. They may override
    `can_accept` to hold the dialog shut until a condition holds (typed confirmation).
    """

    AUTO_FOCUS = "#cancel"

    ACCEPT_ID: ClassVar[str] = "confirm"
    """Id of the `Static` that confirms when clicked."""
    ACCEPT_BINDING_ID: ClassVar[str] = ""
    """Id of the binding that confirms; its (possibly remapped) key is shown on the control."""

    DEFAULT_CSS = dialog_box_css("GuardedDialog") + """
    GuardedDialog #dialog.-high-risk {
        border: double $error;
    }
    GuardedDialog #title {
        text-style: bold;
        margin-bottom: 1;
    }
    GuardedDialog #hint {
        display: none;
        text-style: bold;
        color: $warning;
    }
    GuardedDialog #hint.-shown {
        display: block;
    }
    GuardedDialog #controls {
        height: auto;
        margin-top: 1;
    }
    GuardedDialog #controls Button {
        margin-right: 2;
    }
    GuardedDialog #controls Button:focus {
        text-style: bold reverse;
    }
    GuardedDialog .accept {
        width: auto;
        padding: 0 1;
        text-style: bold;
    }
    GuardedDialog .accept.-locked {
        text-style: dim;
    }
    GuardedDialog #keys {
        color: $text-muted;
    }
    """

    def __init__(self, *, title: str, accept_label: str, high_risk: bool = False) -> None:
        super().__init__()
        self._title = title
        self._accept_label = accept_label
        self._high_risk = high_risk
        # Guards against a second dismiss (key repeat). Not `_closed`: MessagePump owns that
        # name, and setting it makes the screen's removal hang forever.
        self._answered = False
        self._accept_key = "y"

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        classes = "-high-risk" if self._high_risk else ""
        with Vertical(id="dialog", classes=classes):
            yield Static(Content(one_line(self._title)), id="title")  # titles and bodies name outside things
            yield from self.compose_body()
            yield Static("", id="hint", markup=False)
            with Horizontal(id="controls"):
                yield Button("Cancel", id="cancel", compact=True)
                # Drawn unlocked here; `on_mount` applies the lock once the body exists.
                yield Static(self._accept_text(locked=False), id=self.ACCEPT_ID, classes="accept", markup=False)
            yield Static(self._keys_text(), id="keys", markup=False)

    def compose_body(self) -> Iterable[Widget]:
        """The dialog's content between the title and the controls."""
        return ()

    def on_mount(self) -> None:
        # Show the key the operator really has to press, after any user keymap.
        key = self._bound_key(self.ACCEPT_BINDING_ID)
        if key and key != self._accept_key:
            self._accept_key = key
            self.query_one("#keys", Static).update(self._keys_text())
        self.refresh_accept()

    def _bound_key(self, binding_id: str) -> str | None:
        for active in self.active_bindings.values():
            if binding_id and active.binding.id == binding_id:
                return active.binding.key_display or self.app.get_key_display(active.binding)
        return None

    def _accept_text(self, *, locked: bool) -> str:
        text = f"[{self._accept_key}] {self._accept_label}"
        return f"{text} (locked)" if locked else text

    def _keys_text(self) -> str:
        return f"{self._accept_key}: {self._accept_label.lower()}   n / esc: cancel   enter on Cancel: cancel"

    def refresh_accept(self) -> None:
        """Redraw the confirm control; it says "(locked)" while it cannot confirm."""
        locked = not self.can_accept()
        control = self.query_one(f"#{self.ACCEPT_ID}", Static)
        control.update(self._accept_text(locked=locked))
        control.set_class(locked, "-locked")

    def show_hint(self, text: str) -> None:
        hint = self.query_one("#hint", Static)
        hint.update(Content(one_line(text)))
        hint.set_class(bool(text), "-shown")

    # -- rules -----------------------------------------------------------------------

    def can_accept(self) -> bool:
        """Whether confirming is allowed right now; subclasses add conditions."""
        return True

    def locked_hint(self) -> str:
        """What to tell the operator when they try to confirm while locked."""
        return ""

    def _typing(self) -> bool:
        """True while a text box has focus: then `y`/`n` are text, never decisions."""
        return isinstance(self.focused, Input)

    def _try_accept(self) -> None:
        if self._answered:
            return
        if not self.can_accept():
            self.show_hint(self.locked_hint())
            self.app.bell()
            return
        self._close(True)

    def _close(self, result: bool) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(result)

    # -- actions and events ----------------------------------------------------------

    def action_accept(self) -> None:
        if not self._typing():
            self._try_accept()

    def action_reject(self) -> None:
        if not self._typing():
            self._close(False)

    def action_cancel(self) -> None:
        self._close(False)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._close(False)

    def on_click(self, event: events.Click) -> None:
        # A mouse click on the confirm control is deliberate; the same rules apply.
        if event.widget is not None and event.widget.id == self.ACCEPT_ID:
            event.stop()
            self._try_accept()


class ConfirmDialog(GuardedDialog):
    """Ask before a mutating action (pause, drain, resume, approve, reject, quitting the host).

    Returns True only on `y` (or a click on the confirm control); everything else, including
    `enter` on the initially focused Cancel button, returns False.
    """

    ACCEPT_ID = "confirm"
    ACCEPT_BINDING_ID = "confirm.yes"

    BINDINGS = [
        Binding("y", "accept", "Confirm", id="confirm.yes"),
        Binding("n", "reject", "Cancel", id="confirm.no"),
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, title: str, body: str, confirm_label: str = "Yes") -> None:
        super().__init__(title=title, accept_label=confirm_label)
        self._body = body

    def compose_body(self) -> Iterable[Widget]:
        yield Static(Content(multi_line(self._body)), id="body")
