"""A provider that leaves a file behind when it is stopped, so a test in another process can
tell that a host stopped its providers (and did not just die)."""

from __future__ import annotations

from pathlib import Path

from oneiric_core.domains import HealthResult


class StopMarker:
    def __init__(self, settings: dict) -> None:
        self.path = Path(settings["path"])

    async def start(self) -> None:
        self.path.write_text("started\n")

    async def health(self) -> HealthResult:
        return HealthResult.ok("marking")

    async def stop(self) -> None:
        self.path.write_text("stopped\n")


def create(settings: dict) -> StopMarker:
    return StopMarker(settings)
