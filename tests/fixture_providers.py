"""Providers that misbehave on purpose, for lifecycle tests.

They are real provider objects built through real factory strings (the tests add
`tests.fixture_providers` to factory_allowlist); each one fails in one specific way.
"""

from __future__ import annotations

import asyncio
import logging
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
    """stop() takes `stop_s` seconds (settings; default 0.05): a host draining it is busy that long."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        self.stop_s = float(settings.get("stop_s", 0.05))

    async def stop(self) -> None:
        await asyncio.sleep(self.stop_s)
        self.stopped = True
        STOPPED.append(self.name)


def slow_stop(settings: dict) -> Plain:
    return _SlowStop(settings)


class _Chatty(Plain):
    """Logs through Python's `logging` as a provider would: a warning when it starts (from the
    event loop), debug and info from health() (sync, so from a worker thread)."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        self.log = logging.getLogger(__name__)

    async def start(self) -> None:
        self.log.warning("%s: backend is slow to answer", self.name)
        self.started = True

    def health(self) -> HealthResult:  # type: ignore[override]
        self.log.debug("%s: probing", self.name)
        self.log.info("%s: probe answered", self.name)
        return HealthResult.ok("fine")


def chatty(settings: dict) -> Plain:
    return _Chatty(settings)


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


# -- breaking the provider contract (tests/test_provider_contract.py) --------------------------

class _SaysFine(Plain):
    """health() returns a string instead of a HealthResult."""

    async def health(self) -> str:  # type: ignore[override]
        return "totally fine"


def says_fine(settings: dict) -> Plain:
    return _SaysFine(settings)


class _SaysNothing(Plain):
    """health() forgets to return anything."""

    async def health(self) -> None:  # type: ignore[override]
        return None


def says_nothing(settings: dict) -> Plain:
    return _SaysNothing(settings)


class _SaysBool(Plain):
    """health() uses the bool shorthand: the `healthy` setting, True or False."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        self.healthy = bool(settings.get("healthy", True))

    async def health(self) -> bool:  # type: ignore[override]
        return self.healthy


def says_bool(settings: dict) -> Plain:
    return _SaysBool(settings)


def returns_none(settings: dict) -> None:
    """A factory that builds nothing."""
    return None


# What `Misbehaving` raises, by the name in its `error` setting.
ERRORS = {
    "SystemExit": lambda: SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "CancelledError": asyncio.CancelledError,
}


class Misbehaving(Plain):
    """Raises `error` (a name in ERRORS) from `phase` (start, health or stop), from async
    code on the event loop, or from sync code in a worker thread with `sync: true`."""

    def __init__(self, settings: dict) -> None:
        super().__init__(settings)
        self.phase = settings["phase"]
        self.error = ERRORS[settings["error"]]
        if settings.get("sync"):
            self.start, self.health, self.stop = self._sync_start, self._sync_health, self._sync_stop

    def _maybe_raise(self, phase: str) -> None:
        if phase == self.phase:
            raise self.error()

    async def start(self) -> None:
        self._maybe_raise("start")
        self.started = True

    async def health(self) -> HealthResult:
        self._maybe_raise("health")
        return HealthResult.ok(f"{self.name} fine")

    async def stop(self) -> None:
        self._maybe_raise("stop")
        self.stopped = True
        STOPPED.append(self.name)

    def _sync_start(self) -> None:
        self._maybe_raise("start")
        self.started = True

    def _sync_health(self) -> HealthResult:
        self._maybe_raise("health")
        return HealthResult.ok(f"{self.name} fine")

    def _sync_stop(self) -> None:
        self._maybe_raise("stop")
        self.stopped = True
        STOPPED.append(self.name)


def misbehaving(settings: dict) -> Plain:
    """A sync factory (it runs in a worker thread): raises `error` there when `phase` is factory."""
    if settings["phase"] == "factory":
        raise ERRORS[settings["error"]]()
    return Misbehaving(settings)


async def misbehaving_async(settings: dict) -> Plain:
    """An async factory: raises `error` on the event loop when `phase` is factory."""
    if settings["phase"] == "factory":
        raise ERRORS[settings["error"]]()
    return Misbehaving(settings)


class _ChildTaskExits(Plain):
    """health() awaits a task of its own that raises SystemExit: asyncio re-raises that out
    of the event loop itself, past any except around the await."""

    async def health(self) -> HealthResult:
        async def child() -> None:
            raise SystemExit(3)

        await asyncio.gather(child())
        return HealthResult.ok("unreachable")


def child_task_exits(settings: dict) -> Plain:
    return _ChildTaskExits(settings)
