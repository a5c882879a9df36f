"""What the console's screens and widgets may ask of the app: a small typed Protocol.

Why not import `OneiricApp`: the app imports every screen, so a screen that imports the app
back ties the two into one cycle, and every screen then depends on all of the app (its
start-up, its timers, its workers). A screen names here what it uses, the app provides it
(`app.py`), and mypy checks both sides. The Textual `App` methods a screen needs
(`push_screen`, `notify`, ...) it calls on `self.app`, as any Textual widget does.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from textual.widget import Widget

if TYPE_CHECKING:
    from oneiric_core.candidate_record import CandidateRecord
    from oneiric_core.commands import CommandResult
    from oneiric_core.component_history import ComponentHistory
    from oneiric_core.domains import ComponentRef
    from oneiric_core.engine import ComponentStatus, Engine
    from oneiric_core.resolver import Explanation

    from .mode import ConsoleMode
    from .upkeep import Upkeep


class ConsoleState(Protocol):
    """The console's view of the engine and what it may do, as screens read it."""

    engine: Engine
    clock: Callable[[], float]
    mode: ConsoleMode
    host_detail: str
    statuses: dict[ComponentRef, ComponentStatus]
    swapping: set[ComponentRef]
    upkeep: Upkeep | None
    fleet_store: bool  # the store holds many nodes' rows (PostgreSQL)

    @property
    def is_host(self) -> bool: ...

    @property
    def notices(self) -> Sized: ...

    @property
    def can_change(self) -> bool: ...

    def explanation(self, ref: ComponentRef) -> Explanation | None: ...

    def candidate_health(self, ref: ComponentRef, provider: str) -> tuple[str, str]: ...

    def candidate_records(self, ref: ComponentRef) -> dict[str, CandidateRecord]: ...

    def component_history(self, ref: ComponentRef) -> ComponentHistory | None: ...

    async def act(self, kind: str, **args: object) -> CommandResult: ...

    def refusal(self, what: str, doing: str | None = None, key: str | None = None) -> str: ...

    def why_not(self) -> str: ...

    def refresh_all(self) -> None: ...

    def refresh_refs(self, refs: set[ComponentRef]) -> None: ...

    def refresh_remote(self) -> None: ...

    def refresh_approvals(self) -> None: ...

    def refresh_upkeep(self) -> None: ...

    def follow_store(self) -> None: ...

    def main_screen_ready(self) -> None: ...

    async def action_quit_console(self) -> None: ...

    def action_open_upkeep(self, task_id: str | None = None) -> None: ...

    def action_journal(self, at: float | None = None) -> None: ...

    def action_notifications(self) -> None: ...

    def action_incidents(self) -> None: ...

    def open_node(self, name: str) -> None: ...


@runtime_checkable
class ExplainsKeys(Protocol):
    """A screen whose help covers more than the focused widget, and says why keys are off
    (the main screen; the key bar and the help screen ask it)."""

    def help_nodes(self) -> list[Widget]: ...

    def disabled_reason(self, action: str) -> str | None: ...
