"""task/runner `inline`: runs a function as a task inside the host process.

It exists for work that needs no isolation: the cheapest runner, and the default one.
Coroutine functions run on the loop; plain functions run in a worker thread (so they
cannot block the loop) unless `sync_in_thread` is false. Each run is its own asyncio task,
so `stop()` can let in-flight runs finish for `drain_timeout_s` and then cancel the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..domains import HealthResult
from . import _common


class InlineRunner:
    def __init__(self, sync_in_thread: bool, drain_timeout_s: float) -> None:
        self.sync_in_thread = sync_in_thread
        self.drain_timeout_s = drain_timeout_s
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopped = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def start(self) -> None:
        self._stopped = False

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` and return its result; its exception propagates as is."""
        if self._stopped:
            raise RuntimeError("The inline task runner is stopped.")
        _common.check_callable(fn, "A task")
        task = asyncio.create_task(_common.call(fn, *args, in_thread=self.sync_in_thread, **kwargs))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and self._stopped and not (current and current.cancelling()):
                raise RuntimeError("The inline task runner stopped before the task finished.") from None
            raise

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed("The inline task runner is stopped.")
            plain = await self.run(sum, (20, 22))
            coro = await self.run(_probe_coroutine, 21)
            latency = _common.elapsed_ms(started)
            if (plain, coro) != (42, 42):
                return HealthResult.failed(f"The probe tasks returned {plain!r} and {coro!r} instead of 42.", latency)
            return HealthResult.ok("ran a plain and a coroutine probe task", latency)
        except RuntimeError as exc:  # stopped under the probe, or no worker thread left
            return HealthResult.failed(f"The probe task failed: {_common.describe(exc)}.", _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True
        pending = set(self._inflight)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=self.drain_timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _probe_coroutine(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


def create(settings: dict[str, Any]) -> InlineRunner:
    return InlineRunner(
        sync_in_thread=_common.flag(settings, "sync_in_thread", True),
        drain_timeout_s=_common.number(settings, "drain_timeout_s", 5.0, minimum=0),
    )
