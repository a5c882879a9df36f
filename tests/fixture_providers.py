"""Providers that misbehave on purpose, for lifecycle tests.

They are real provider objects built through real factory strings (the tests add
`tests.fixture_providers` to factory_allowlist); each one fails in one specific way.
"""

from __future__ import annotations

import asyncio
import threading
import time

from oneiric_core.domains import HealthResult

# Lets a test release every hung thread at teardown so the pool does not keep them.
RELEASE = threading.Event()
STOPPED: list[str] = []


class Plain:
    """A healthy provider that records its stop."""

    def __init__(self, settings: dict) -> None:
        self.name = settings.get("name", "plain")
        self.stopped = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def health(self) -> HealthResult:
        return HealthResult.ok(f"{self.name} fine")

    async def stop(self) -> None:
        self.stopped = True
        STOPPED.append(self.name)


def healthy(settings: dict) -> Plain:
    return Plain(settings)


class _Unhealthy(Plain):
    async def health(self) -> HealthResult:
        return HealthResult.failed("backend refused the probe")


def unhealthy(settings: dict) -> Plain:
    return _Unhealthy(settings)


def raising(settings: dict) -> Plain:
    raise RuntimeError("cannot connect to the backend")


def hanging_factory(settings: dict) -> Plain:
    """A sync factory that blocks its thread (until the test releases it)."""
    RELEASE.wait(30)
    return Plain(settings)


class _HangingHealth(Plain):
    def health(self) -> HealthResult:  # sync on purpose: it runs in a worker thread
        RELEASE.wait(30)
        return HealthResult.ok()


def hanging_health(settings: dict) -> Plain:
    return _HangingHealth(settings)


class _FailingStop(Plain):
    async def stop(self) -> None:
        raise OSError("socket already closed")


def failing_stop(settings: dict) -> Plain:
    return _FailingStop(settings)


class _SlowStop(Plain):
    async def stop(self) -> None:
        await asyncio.sleep(0.05)
        self.stopped = True
        STOPPED.append(self.name)


def slow_stop(settings: dict) -> Plain:
    return _SlowStop(settings)


class _SyncProvider:
    """Everything sync: factory, health and stop all run in worker threads."""

    def __init__(self, settings: dict) -> None:
        self.name = settings.get("name", "sync")
        self.thread_names: list[str] = []
        self.stopped = False

    def health(self) -> bool:
        self.thread_names.append(threading.current_thread().name)
        time.sleep(0.01)
        return True

    def stop(self) -> None:
        self.stopped = True


def sync_provider(settings: dict) -> _SyncProvider:
    return _SyncProvider(settings)


class _Flappy(Plain):
    """Healthy unless the file `<state_dir>/<name>.down` exists: lets a test flip its health."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        from pathlib import Path

        self.flag = Path(settings["state_dir"]) / f"{self.name}.down"

    async def health(self) -> HealthResult:
        if self.flag.exists():
            return HealthResult.failed(self.flag.read_text() or "down")
        return HealthResult.ok("up")


def flappy(settings: dict) -> Plain:
    return _Flappy(settings)


class _SlowStart(Plain):
    """start() takes `start_s` seconds (settings): a swap to it is in flight that long."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        self.start_s = float(settings.get("start_s", 1.0))

    async def start(self) -> None:
        await asyncio.sleep(self.start_s)
        self.started = True


def slow_start(settings: dict) -> Plain:
    return _SlowStart(settings)
