"""Small helpers every built-in provider shares: settings validation, paths, timing, calling.

Settings validation lives here so every provider refuses bad settings the same way: a
ValueError whose message is one sentence naming the setting.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MISSING = object()


def number(
    settings: dict[str, Any],
    name: str,
    default: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    positive: bool = False,
    allow_none: bool = False,
) -> Any:
    """Read a numeric setting, refusing booleans, strings and out-of-range values."""
    value = settings.get(name, default)
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ValueError(f"Setting '{name}' must be {kind}, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"Setting '{name}' must be greater than 0, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"Setting '{name}' must be at least {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"Setting '{name}' must be at most {maximum}, got {value!r}.")
    return value


def text(settings: dict[str, Any], name: str, default: str | None, *, allow_none: bool = False) -> Any:
    """Read a non-empty string setting."""
    value = settings.get(name, default)
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Setting '{name}' must be a non-empty string, got {value!r}.")
    return value


def flag(settings: dict[str, Any], name: str, default: bool) -> bool:
    value = settings.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"Setting '{name}' must be true or false, got {value!r}.")
    return value


def state_dir(settings: dict[str, Any]) -> Path:
    """The absolute directory the engine gives every provider for its files."""
    value = settings.get("state_dir", _MISSING)
    if value is _MISSING or not isinstance(value, str) or not value:
        raise ValueError("Setting 'state_dir' must be the absolute path of the engine's state directory.")
    path = Path(value)
    if not path.is_absolute():
        raise ValueError(f"Setting 'state_dir' must be an absolute path, got {value!r}.")
    return path


def file_path(settings: dict[str, Any], name: str, default: str) -> Path:
    """A path setting: absolute as given, relative resolved under `state_dir`."""
    raw = text(settings, name, default)
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    return state_dir(settings) / path


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started`, a `time.perf_counter()` reading."""
    return round((time.perf_counter() - started) * 1000.0, 3)


def describe(exc: BaseException) -> str:
    """`TypeName: message` without a trailing period, for one-sentence health messages."""
    detail = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} must be a callable or coroutine function, got {fn!r}.")


async def call(fn: Callable[..., Any], *args: Any, in_thread: bool = False, **kwargs: Any) -> Any:
    """Call a plain or coroutine function; plain ones run in a worker thread when asked."""
    if inspect.iscoroutinefunction(fn):
        result = await fn(*args, **kwargs)
    elif in_thread:
        result = await asyncio.to_thread(fn, *args, **kwargs)
    else:
        result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
