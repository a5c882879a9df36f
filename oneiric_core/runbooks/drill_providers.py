"""A provider for drills only: it takes as long to start as the drill says (a hung factory).

Real provider code built through a real factory string; a drill's throw-away app.yml adds this
module to factory_allowlist (faults.py `hang-factory`), no other settings ever do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..domains import HealthResult


class SlowStart:
    def __init__(self, start_s: float) -> None:
        self.start_s = start_s

    async def start(self) -> None:
        await asyncio.sleep(self.start_s)  # cancellable: a stopping host is never held up

    async def health(self) -> HealthResult:
        return HealthResult.ok("started (slowly)")

    async def stop(self) -> None:
        return None


def slow_start(settings: dict[str, Any]) -> SlowStart:
    return SlowStart(float(settings.get("start_s", 3600)))
