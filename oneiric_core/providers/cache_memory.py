"""adapter/cache `memory`: an in-process LRU cache.

It exists so a fresh install has a working cache with no files and no server: it is the
default (highest priority) cache, and the one tests and single-process hosts use.
Entries live only as long as the process; `max_entries` bounds memory, evicting the
least recently used entry first; `ttl_s` expires an entry on its next read.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any

from ..domains import HealthResult
from . import _common

Value = bytes | str


def check_entry(key: Any, value: Any = b"", ttl_s: Any = None) -> None:
    """The argument checks every cache provider applies, so they all refuse the same things."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"cache keys must be non-empty strings, got {key!r}.")
    if not isinstance(value, (bytes, str)):
        raise TypeError(f"cache values must be bytes or str, got {type(value).__name__}.")
    if ttl_s is not None and (isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or ttl_s <= 0):
        raise ValueError(f"ttl_s must be a number of seconds greater than 0 or None, got {ttl_s!r}.")


class MemoryCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        # key -> (value, monotonic expiry or None); order is least- to most-recently used.
        self._entries: OrderedDict[str, tuple[Value, float | None]] = OrderedDict()
        self._stopped = False
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def start(self) -> None:
        self._stopped = False

    async def get(self, key: str) -> Value | None:
        self._check_open()
        check_entry(key)
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and time.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: Value, ttl_s: float | None = None) -> None:
        self._check_open()
        check_entry(key, value, ttl_s)
        self._put(key, value, ttl_s)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when it was present."""
        self._check_open()
        check_entry(key)
        return self._entries.pop(key, None) is not None

    async def clear(self) -> None:
        self._entries.clear()

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed("The memory cache is stopped.")
            key, token = f"__oneiric_health__:{uuid.uuid4().hex}", uuid.uuid4().hex
            # The probe bypasses eviction so checking health never pushes out a real entry.
            self._put(key, token, 60.0)
            seen = await self.get(key)
            removed = await self.delete(key)
            latency = _common.elapsed_ms(started)
            if seen != token or not removed:
                return HealthResult.failed("The memory cache did not return the probe value it stored.", latency)
            return HealthResult.ok(f"{len(self._entries)}/{self.max_entries} entries in use", latency)
        except RuntimeError as exc:  # stopped under the probe; anything else is the engine's to report
            return HealthResult.failed(f"Memory cache probe failed: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True
        self._entries.clear()

    def _put(self, key: str, value: Value, ttl_s: float | None) -> None:
        expires = time.monotonic() + ttl_s if ttl_s is not None else None
        self._entries[key] = (value, expires)
        self._entries.move_to_end(key)

    def _check_open(self) -> None:
        if self._stopped:
            raise RuntimeError("The memory cache is stopped.")


def create(settings: dict[str, Any]) -> MemoryCache:
    return MemoryCache(max_entries=_common.number(settings, "max_entries", 1024, integer=True, minimum=1))
