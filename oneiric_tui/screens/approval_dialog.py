"""The approval dialog: a dry-run summary of one swap and a deliberate yes/no.

The operator sees exactly what would change (component, from, to, why, blockers, force)
before deciding. Approval follows the `GuardedDialog` rules (Cancel focused, only `y`
approves, `enter` never does). A high-risk swap also needs the key name typed into a box
first, the "type the name to delete" pattern, because one key press is too cheap for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.binding import Binding
from textual.containers import Grid
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Input, Static

from oneiric_core.text import multi_line, one_line

from .confirm import GuardedDialog

LOCKED_HINT = "type the key name first"


class ApprovalDialog(GuardedDialog):
    """Approve (True) or reject (False) one proposed swap.

    All strings come from data (provider names, reasons, blockers), so they are rendered as
    plain `Content` of oneiric_core.text's escaped form: a `[` in them never reads as markup
    and a control character shows as an escape.
    """

    ACCEPT_ID = "approve"
    ACCEPT_BINDING_ID = "approval.approve"

    BINDINGS = [
        Binding("y", "accept", "Approve", id="approval.approve"),
        Binding("n", "reject", "Reject", id="approval.reject"),
        Binding("escape", "cancel", "Cancel", id="approval.cancel"),
    ]

    DEFAULT_CSS = """
    ApprovalDialog #summary {
        layout: grid;
        grid-size: 2;
        grid-columns: 11 1fr;
        grid-rows: auto;
        grid-gutter: 0 1;
        height: auto;
    }
    ApprovalDialog #summary .label {
        text-style: bold;
    }
    ApprovalDialog #risk {
        margin-top: 1;
        text-style: bold;
        color: $error;
    }
    ApprovalDialog #confirm-key {
        border: solid $border-blurred;
        margin-top: 1;
    }
    ApprovalDialog #confirm-key:focus {
        border: double $border;
    }
    """

    def __init__(
        self,
        *,
        ref_label: str,
        key: str,
        from_provider: str | None,
        to_provider: str,
        to_source: str,
        reason: str,
        blockers: list[str],
        force: bool,
        high_risk: bool,
        risk_reasons: list[str],
        keep_in: str | None = None,
    ) -> None:
        self.ref_label = ref_label
        self.key = key
        self.from_provider = from_provider
        self.to_provider = to_provider
        self.to_source = to_source
        self.reason = reason
        self.blockers = list(blockers)
        self.force = force
        self.high_risk = high_risk
        self.risk_reasons = list(risk_reasons)
        self.keep_in = keep_in  # the settings file the selection is written into afterwards, if kept
        super().__init__(title=f"Approve swap of {ref_label}?", accept_label="Approve", high_risk=high_risk)

    def compose_body(self) -> Iterable[Widget]:
        rows = [
            ("Component", self.ref_label),
            ("From", self.from_provider or "(nothing serving)"),
            ("To", f"{self.to_provider} ({self.to_source})"),
            ("Why", self.reason or "-"),
            ("Blockers", "\n".join(f"- {b}" for b in self.blockers) if self.blockers else "none"),
            ("Force", "yes (skips the health gate)" if self.force else "no"),
            ("Keep", f"yes: written into {self.keep_in} once the swap completes" if self.keep_in else
             "no: a restart brings the ranked winner back"),
        ]
        with Grid(id="summary"):
            for label, value in rows:
                yield Static(Content(label), classes="label")
                yield Static(Content(multi_line(value) if label == "Blockers" else one_line(value)),
                             id=f"field-{label.lower()}")
        if self.high_risk:
            reasons = "; ".join(self.risk_reasons) or "marked high risk"
            yield Static(Content.assemble("WARNING high risk: ", one_line(reasons)), id="risk")
            yield Static(
                Content(f"Tab to the box, type the key name '{one_line(self.key)}', press enter, then y."),
                id="risk-help",
            )
            yield Input(placeholder=f"type {one_line(self.key)} to confirm", id="confirm-key")

    def _keys_text(self) -> str:
        text = super()._keys_text()
        return f"{text}   tab: key box" if self._high_risk else text

    # -- typed confirmation ----------------------------------------------------------

    def can_accept(self) -> bool:
        if not self._high_risk:
            return True
        return self.query_one("#confirm-key", Input).value == self.key

    def locked_hint(self) -> str:
        return LOCKED_HINT

    @on(Input.Changed, "#confirm-key")
    def _key_typed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_accept()
        if self.can_accept():
            self.show_hint("")

    @on(Input.Submitted, "#confirm-key")
    def _key_submitted(self, event: Input.Submitted) -> None:
        # Enter in the box never approves: it hands focus to Cancel so the next `y` is a
        # key press, not text.
        event.stop()
        if not self.can_accept():
            self.show_hint(f"that is not '{self.key}': {LOCKED_HINT}")
        self.query_one("#cancel").focus()
