"""Host the state directory, or stand by while another process does and take over once it goes.

A process that serves several front ends of its own (the web server of `oneiric console
--web`, whose every browser tab is a client console) must make sure that exactly one host
exists for them without ever becoming a second one: it hosts if nobody does; if a console or
`oneiric run` already hosts, it stands by and its clients talk to that host; when that host
stops, or its heartbeat goes stale, it takes over within a second or two, as a console does
(if it cannot, say because its user may not write the state directory, it says why once and
keeps standing by for the next host, e.g. the one systemd restarts).
Like `oneiric run`, it stops with an error when another process took its lease (it stalled past
the staleness limit): two hosts would run every provider twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

from .engine import HEARTBEAT_S, Engine, HostBusy
from .errors import OneiricError
from .host import LeaseLost, lease_taken
from .store import StoreError


@dataclass(frozen=True, slots=True)
class HostState:
    """Who hosts, as this process sees it: `hosting` (this process) or the other holder."""

    hosting: bool
    detail: str  # "pid 123" (this one) or "pid 456 on web-1" (the one stood by for)


class StandbyHost:
    """Keeps `engine` the host of its state directory whenever no other process is."""

    def __init__(self, engine: Engine, *, on_change: Callable[[str], None] = lambda line: None) -> None:
        """`on_change` is told, in one sentence, when this process takes over as the host."""
        self.engine = engine
        self.on_change = on_change
        self._failed: str | None = None  # why the last takeover failed (said once, not every beat)

    async def begin(self) -> HostState:
        """Host now if nobody does (every provider activated on return), else stand by."""
        try:
            await self.engine.start()
        except HostBusy as exc:
            return HostState(False, f"pid {exc.holder.pid} on {exc.holder.hostname}")
        return HostState(True, f"pid {os.getpid()}")

    async def keep(self, stopping: asyncio.Event) -> None:
        """Until `stopping` is set: take over when the host stood by for is gone; raise
        LeaseLost when this host's lease was taken."""
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), HEARTBEAT_S)
                return
            except TimeoutError:
                pass
            if self.engine.is_host:
                holder = lease_taken(self.engine)
                if holder is not None:
                    raise LeaseLost(f"This server lost its lease to {holder} and stopped hosting.")
                continue
            try:
                lease, alive = self.engine.host()
            except StoreError:
                continue  # cannot tell now: ask again on the next beat
            if alive:
                continue
            gone = f"pid {lease.pid} on {lease.hostname}" if lease else "the host"
            try:
                await self.engine.start()
            except HostBusy as exc:  # another process took over first: stand by for it
                self.on_change(f"The host ({gone}) is gone; pid {exc.holder.pid} on {exc.holder.hostname} "
                               "took over, and the web sessions follow it.")
                continue
            except OneiricError as exc:  # e.g. this user may not write the state directory
                if str(exc) != self._failed:
                    self._failed = str(exc)
                    self.on_change(f"The host ({gone}) is gone and this server cannot take over: {exc} "
                                   "The web sessions wait for another host.")
                continue
            self._failed = None
            self.on_change(f"The host ({gone}) is gone; this server hosts {self.engine.state_dir} now.")

    async def end(self) -> None:
        """Stop hosting (providers after their in-flight work, lease released), if hosting."""
        await self.engine.stop()


__all__ = ["HostState", "StandbyHost"]
