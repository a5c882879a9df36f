"""Typed messages the app posts to itself: work finishes off the UI path, results come back here."""

from __future__ import annotations

from textual.message import Message

from oneiric_core.commands import CommandResult
from oneiric_core.domains import ComponentRef
from oneiric_core.events import Event

from .mode import ConsoleMode


class EngineEvents(Message):
    """A batch of journal events from the engine's bus (or, in client mode, from the store)."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class ComponentsChanged(Message):
    """Lifecycle or health of these keys changed (coalesced)."""

    def __init__(self, refs: set[ComponentRef]) -> None:
        super().__init__()
        self.refs = refs


class EngineReady(Message):
    """The engine finished starting (providers activated) or attached as a client."""

    def __init__(self, mode: ConsoleMode, detail: str = "") -> None:
        super().__init__()
        self.mode = mode
        self.detail = detail


class SwapDone(Message):
    """A swap the operator approved has finished (or waits for a second approver): the
    host's answer, whichever process ran it (`result.data` holds the proposal and the swap)."""

    def __init__(self, result: CommandResult, keep: bool = False) -> None:
        super().__init__()
        self.result = result
        self.keep = keep  # write the selection into settings if the swap completed


class RefHighlighted(Message):
    """The operator moved to another component (tree or health table)."""

    def __init__(self, ref: ComponentRef | None, provider: str | None = None) -> None:
        super().__init__()
        self.ref = ref
        self.provider = provider
