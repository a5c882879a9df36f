"""Ports: what each part that is handed the engine uses of it, as small typing Protocols.

Why: the Engine is the composition root, and a module that takes "the whole Engine" can reach
any of it, so nobody can tell what it depends on, and a test or a second implementation (a
fleet node's view, say) must provide everything. Each consumer names here exactly what it
uses, annotates its parameter with that Protocol, and mypy checks that the Engine provides
it (tests/test_engine_ports.py also checks it at run time). The imports are for annotations
only: this module imports nothing of the engine's at run time, so it makes no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .activity import ActivityManager
    from .approvals import Approvals
    from .domains import ComponentRef, Domain
    from .events import Event
    from .health import HealthMonitor
    from .lifecycle import LifecycleManager, SwapResult
    from .principal import Principal
    from .remote.loop import RemoteManager
    from .resolver import Resolver
    from .settings import ConfigProblem, SettingsSnapshot
    from .store import LeaseInfo, ProposalRecord, StateStore


class SettingsSyncEngine(Protocol):
    """What the settings sync (settings_sync.py) uses: it reloads files into the settings in
    force, re-registers candidates, journals, and proposes swaps for the keys that moved."""

    settings: SettingsSnapshot
    store_error: str | None

    @property
    def actor(self) -> str: ...
    @property
    def is_host(self) -> bool: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def resolver(self) -> Resolver: ...
    @property
    def lifecycle(self) -> LifecycleManager: ...
    @property
    def approvals(self) -> Approvals: ...
    @property
    def health(self) -> HealthMonitor: ...
    @property
    def remote(self) -> RemoteManager: ...

    def emit(self, event: Event) -> Event: ...
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...
    def host(self) -> tuple[LeaseInfo | None, bool]: ...
    def store_write(self, fn: Callable[[Any], Any], value: Any) -> None: ...
    def apply_settings(self, snap: SettingsSnapshot) -> set[ComponentRef]: ...
    def journal_problems(self, problems: list[ConfigProblem]) -> None: ...

    async def request_swap(
        self, domain: Domain | str, key: str, provider: str | None = None, *, force: bool = False,
        source: str = "console", reason: str = "", actor: Principal | str | None = None, approve: bool = False,
        to_source: str | None = None,
    ) -> tuple[ProposalRecord, SwapResult | None]: ...


class StatusEngine(Protocol):
    """What the status view (status_view.py) reads: the resolver, the live slots, health and
    activity in the host; the store's snapshots and the lease elsewhere."""

    store_error: str | None

    @property
    def is_host(self) -> bool: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def resolver(self) -> Resolver: ...
    @property
    def lifecycle(self) -> LifecycleManager: ...
    @property
    def health(self) -> HealthMonitor: ...
    @property
    def activity(self) -> ActivityManager: ...

    def host(self) -> tuple[LeaseInfo | None, bool]: ...
    def known(self, domain: Domain | str, key: str) -> ComponentRef: ...

