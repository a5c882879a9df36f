"""Modal screens of the console: the swap picker, the approval and confirm dialogs, help.

Each is a `ModalScreen[T]` that returns its answer through `dismiss`, so the app pushes it
with a callback and keeps its live panes running underneath.
"""

from __future__ import annotations

from .approval_dialog import ApprovalDialog
from .confirm import ConfirmDialog, GuardedDialog
from .help import HelpScreen, HelpSection, help_sections
from .swap_picker import PickerOption, SwapChoice, SwapPicker

__all__ = [
    "ApprovalDialog",
    "ConfirmDialog",
    "GuardedDialog",
    "HelpScreen",
    "HelpSection",
    "PickerOption",
    "SwapChoice",
    "SwapPicker",
    "help_sections",
]
