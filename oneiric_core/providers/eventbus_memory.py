"""event/bus `memory`: in-process publish/subscribe between components.

It exists so components can tell each other things without knowing each other, with
nothing to run. Topics match exactly; `"*"` subscribes to every topic. `publish` awaits
each handler in subscription order (plain handlers run on the loop, so keep them quick) and
returns how many took the payload without raising;
a handler that raises is logged and counted in `errors`, never passed to the publisher.
This bus is for components; the engine's own event stream is `oneiric_core.events`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..domains import HealthResult
from . import _common

log = logging.getLogger(__name__)

WILDCARD = "*"


class MemoryEventBus:
    def __init__(self, handler_timeout_s: float | None) -> None:
        self.handler_timeout_s = handler_timeout_s
        self._handlers: dict[str, list[Callable[[str, Any], Any]]] = {}
        self._stopped = False
        self.published = 0
        self.errors = 0

    async def start(self) -> None:
        self._stopped = False

    def subscribe(self, topic: str, handler: Callable[[str, Any], Any]) -> Callable[[], None]:
        """Call `handler(topic, payload)` (plain or async) for each publish; returns an unsubscribe function."""
        if self._stopped:
            raise RuntimeError("The memory event bus is stopped.")
        _check_topic(topic)
        _common.check_callable(handler, "An event handler")
        self._handlers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(topic, [])
            if handler in handlers:
                handlers.remove(handler)
            if not handlers:
                self._handlers.pop(topic, None)

        return unsubscribe

    def subscribers(self, topic: str) -> int:
        return len(self._handlers.get(topic, [])) + (len(self._handlers.get(WILDCARD, [])) if topic != WILDCARD else 0)

    async def publish(self, topic: str, payload: Any = None) -> int:
        """Deliver `payload` to every subscriber of `topic`; returns how many handled it."""
        if self._stopped:
            raise RuntimeError("The memory event bus is stopped.")
        _check_topic(topic)
        if topic == WILDCARD:
            raise ValueError("Cannot publish to '*'; it is only for subscribing to every topic.")
        self.published += 1
        return await self._deliver(topic, payload, wildcard=True)

    async def _deliver(self, topic: str, payload: Any, *, wildcard: bool) -> int:
        # Copy first: a handler may subscribe or unsubscribe while we deliver.
        handlers = list(self._handlers.get(topic, ()))
        if wildcard:
            handlers += self._handlers.get(WILDCARD, ())
        delivered = 0
        for handler in handlers:
            try:
                async with asyncio.timeout(self.handler_timeout_s):
                    await _common.call(handler, topic, payload)
            except Exception as exc:  # noqa: BLE001 - a subscriber's failure is counted, never the publisher's (docstring)
                self.errors += 1
                log.warning("event handler %r for topic %r failed: %s", handler, topic, _common.describe(exc))
            else:
                delivered += 1
        return delivered

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed("The memory event bus is stopped.")
            topic, token = f"__oneiric_health__.{uuid.uuid4().hex}", uuid.uuid4().hex
            seen: list[Any] = []
            unsubscribe = self.subscribe(topic, lambda _topic, payload: seen.append(payload))
            try:
                # The same delivery path as publish(), minus "*" subscribers: they never see probes.
                delivered = await self._deliver(topic, token, wildcard=False)
            finally:
                unsubscribe()
            latency = _common.elapsed_ms(started)
            if delivered != 1 or seen != [token]:
                return HealthResult.failed("The probe handler did not receive the probe event.", latency)
            return HealthResult.ok(f"{len(self._handlers)} topic(s) with subscribers", latency)
        except RuntimeError as exc:  # stopped under the probe; anything else is the engine's to report
            return HealthResult.failed(f"Event bus probe failed: {_common.describe(exc)}.", _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True
        self._handlers.clear()


def _check_topic(topic: Any) -> None:
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"Topics must be non-empty strings, got {topic!r}.")


def create(settings: dict[str, Any]) -> MemoryEventBus:
    return MemoryEventBus(
        handler_timeout_s=_common.number(settings, "handler_timeout_s", None, positive=True, allow_none=True),
    )
