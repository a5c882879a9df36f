"""Calling into provider code, and the contract its answers must meet (docs/architecture.md §3).

A provider is code the engine does not own. Whatever its factory, `start()`, `health()` or
`stop()` raises is that provider's failure and nothing more: `SystemExit`,
`KeyboardInterrupt` and `GeneratorExit` included, which `except Exception` lets through and
which used to escape a swap and end the host. The host stops only on its own signals, and
those never arrive as an exception inside provider code: `oneiric run` turns SIGTERM/SIGINT
into an event on the loop, and the asyncio runner turns Ctrl-C into a cancellation.

Cancellation is the one thing that passes through, and only when it is ours. A CancelledError
while this task has a cancellation request pending (`Task.cancelling()`: the host stopping, a
caller cancelling the swap, an `asyncio.timeout` expiring) is re-raised, so the swap unwinds
and the timeout turns it into "timed out". One the provider raised on its own, with nothing
cancelling us, is its failure like any other error. A provider that caught our CancelledError
and raised something else in its place (the CancelledError is in the new error's context)
still ends as our cancellation.

Sync provider code runs in a worker thread and hands back what it raised as a value, never
through the future: asyncio delivers a future's exception by throwing it into the task, and
a GeneratorExit thrown that way closes every coroutine of the task up to its top instead of
reaching the `except` here.

The answers are checked too. `health()` must return a HealthResult; the bool shorthand
(True: ok, False: failed) is the one other form, as the README's provider section says.
Anything else fails the gate with a sentence naming what came back. The engine keeps a
HealthResult of its own making (a plain one, a real HealthStatus), so nothing a provider
subclassed runs again later. A factory that returns None has built nothing: it fails the build.

The texts made here describe a provider's values without calling its `__repr__` or `__str__`
beyond the built-in types (those are provider code too).
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import math
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from .domains import HealthResult, HealthStatus

_REPR_LIMIT = 60
_SCALARS = (str, bytes, int, float, complex)


class ProviderFault(Exception):
    """Provider code raised `error` (any BaseException but our own cancellation).

    `str()` is "SystemExit: 3" or "KeyboardInterrupt": the type and its message, the way
    the lifecycle words "factory raised ..." and "stop() raised ..."."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        super().__init__(describe_error(error))


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Raised:
    """What a sync provider call raised, returned from its worker thread as a value."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _in_thread(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed back as a value (module docstring)
        return _Raised(exc)


def _ours(exc: BaseException) -> bool:
    """Whether `exc` is our own cancellation: a CancelledError, or an error raised while
    handling one, while this task is being cancelled."""
    if not _cancelling():
        return False
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, asyncio.CancelledError):
            return True
        cause = current.__cause__
        current, seen = (current.__context__ if cause is None else cause), seen + 1
    return False


async def call_provider(fn: Callable[..., Any], *args: Any, executor: Executor | None) -> Any:
    """`fn(*args)`: awaited on this loop when it is a coroutine function, else run in
    `executor` (and its result awaited if it is awaitable). Everything it raises comes out
    as ProviderFault, except our own cancellation (see the module docstring)."""
    try:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, _in_thread, fn, args)
        if type(result) is _Raised:
            raise ProviderFault(result.error) from result.error
        if inspect.isawaitable(result):
            result = await result
        return result
    except ProviderFault:
        raise
    except BaseException as exc:  # noqa: BLE001 - containing provider code is the point
        if _ours(exc):
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise asyncio.CancelledError() from exc
        raise ProviderFault(exc) from exc


class EscapedFromTask(RuntimeError):
    """A task raised SystemExit or KeyboardInterrupt; asyncio would have re-raised it out of
    the event loop (ending the host), past any `except` around the await."""


class _Contained(collections.abc.Coroutine):
    """A task's coroutine, passed through step by step, with SystemExit and KeyboardInterrupt
    turned into EscapedFromTask. A delegating object rather than `async def` wrapper: a task
    cancelled before its first step would leave a wrapper's inner coroutine never awaited (a
    RuntimeWarning); here the cancellation is thrown into the inner coroutine itself."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Any) -> None:
        self._coro = coro

    def send(self, value: Any) -> Any:
        try:
            return self._coro.send(value)
        except (SystemExit, KeyboardInterrupt) as exc:
            raise EscapedFromTask(f"a task raised {describe_error(exc)}") from exc

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        try:
            return self._coro.throw(typ) if val is None and tb is None else self._coro.throw(typ, val, tb)
        except (SystemExit, KeyboardInterrupt) as exc:
            raise EscapedFromTask(f"a task raised {describe_error(exc)}") from exc

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:  # cr_frame, cr_code ... for a task's repr
        return getattr(self._coro, name)


def _contained_task(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    return asyncio.Task(_Contained(coro), loop=loop, **kwargs)


def contain_task_exits(loop: asyncio.AbstractEventLoop) -> None:
    """Every task created on `loop` from now on turns a SystemExit or KeyboardInterrupt it
    raises into an ordinary error. call_provider contains what provider code raises in the
    task that calls it; a task the provider starts itself (`asyncio.gather(child())` in its
    health()) is another task, and asyncio lets those two through the whole loop. The
    headless host installs this: it stops on its own signals (host.py), never on these."""
    loop.set_task_factory(_contained_task)


def provider_attr(obj: Any, name: str) -> Callable[..., Any] | None:
    """`getattr(obj, name, None)`, where an attribute lookup that raises (a property, a
    `__getattr__`) is the provider's failure, not ours; None when it is not callable."""
    try:
        value = getattr(obj, name, None)
    except BaseException as exc:  # noqa: BLE001 - a property or __getattr__ is provider code (module docstring)
        raise ProviderFault(exc) from exc
    return value if callable(value) else None


def describe_error(error: BaseException) -> str:
    """"SystemExit: 3", "KeyboardInterrupt" (no message), "ValueError: <unprintable>"."""
    name = type(error).__name__
    try:
        text = str(error)
    except BaseException:  # noqa: BLE001 - a provider's exception may define a broken __str__
        text = "<unprintable>"
    return f"{name}: {text}" if text else name


def describe_value(value: Any) -> str:
    """What came back, for a sentence: "str 'totally fine'", "int 3", "None", "dict".
    Built-in scalars show their value (cut to a few dozen characters); anything else only
    its type, as its repr would be provider code."""
    if value is None:
        return "None"
    kind = type(value)
    name = kind.__name__
    if kind in _SCALARS or kind is bool:
        text = repr(value)
        if len(text) > _REPR_LIMIT:
            text = text[:_REPR_LIMIT - 3] + "..."
        return f"{name} {text}"
    return name


def health_result(raw: Any, latency_ms: float) -> HealthResult:
    """`health()`'s answer as the engine's own HealthResult; anything outside the contract
    is a failed one that says what came back."""
    if raw is True:
        return HealthResult.ok("", latency_ms)
    if raw is False:
        return HealthResult.failed("health() returned False", latency_ms)
    if not issubclass(type(raw), HealthResult):  # not isinstance: that may ask raw for __class__
        return HealthResult.failed(f"health() returned {describe_value(raw)}, not a HealthResult", latency_ms)
    try:  # a HealthResult subclass's fields may be properties: provider code
        status, message, latency = raw.status, raw.message, raw.latency_ms
    except BaseException as exc:  # noqa: BLE001 - the fields' getters are provider code (module docstring)
        return HealthResult.failed(f"health() returned a HealthResult that raised {describe_error(exc)}",
                                   latency_ms)
    if type(status) is not HealthStatus:
        known = {s.value: s for s in HealthStatus}
        if type(status) is not str or status not in known:
            allowed = ", ".join(known)
            return HealthResult.failed(f"health() returned a HealthResult whose status is "
                                       f"{describe_value(status)}, not one of {allowed}", latency_ms)
        status = known[status]
    if type(message) is not str:
        message = f"(health() gave a {describe_value(message)} as its message)"
    if type(latency) not in (int, float) or not math.isfinite(latency) or latency < 0:
        latency = latency_ms
    return HealthResult(status, message, float(latency))
