"""action/compress `gzip` and `zlib`: compress and decompress bytes.

It exists so components compress payloads through a swappable action instead of each
picking a format. Two factories share one class: `create_gzip` (gzip framing, readable by
`gunzip`; mtime is fixed at 0 so equal input gives equal output) and `create_zlib`.
Decompression stops at `max_output_bytes`, so a tiny hostile input cannot fill memory;
payloads above 64 KiB are worked on in a worker thread so the loop keeps running.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

from ..domains import HealthResult
from . import _common

_THREAD_THRESHOLD = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "zlib": zlib.MAX_WBITS}


class Compressor:
    def __init__(self, fmt: str, level: int, max_output_bytes: int) -> None:
        self.format = fmt
        self.level = level
        self.max_output_bytes = max_output_bytes
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False

    async def compress(self, data: bytes) -> bytes:
        return await self._apply(self._compress, data)

    async def decompress(self, data: bytes) -> bytes:
        """The original bytes; ValueError for input that is not valid `format` data or expands too far."""
        return await self._apply(self._decompress, data)

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed(f"The {self.format} compressor is stopped.")
            probe = b"oneiric health probe " * 32 + os.urandom(16)
            packed = await self.compress(probe)
            back = await self.decompress(packed)
            latency = _common.elapsed_ms(started)
            if back != probe:
                return HealthResult.failed(f"A {self.format} round trip did not give the probe bytes back.", latency)
            return HealthResult.ok(f"{self.format} level {self.level} round trip {len(probe)} -> {len(packed)} bytes",
                                   latency)
        except (ValueError, RuntimeError, zlib.error) as exc:  # bad round trip data, or stopped under the probe
            return HealthResult.failed(f"The {self.format} round trip failed: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True

    async def _apply(self, fn: Callable[[bytes], bytes], data: Any) -> bytes:
        if self._stopped:
            raise RuntimeError(f"The {self.format} compressor is stopped.")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self.format} works on bytes, got {type(data).__name__}.")
        data = bytes(data)
        if len(data) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(fn, data)
        return fn(data)

    def _compress(self, data: bytes) -> bytes:
        if self.format == "gzip":
            return gzip.compress(data, compresslevel=self.level, mtime=0)
        return zlib.compress(data, self.level)

    def _decompress(self, data: bytes) -> bytes:
        out = bytearray()
        remaining = data
        # gzip allows several members back to back; zlib data is a single stream.
        while True:
            engine = zlib.decompressobj(_WBITS[self.format])
            try:
                out += engine.decompress(remaining, self.max_output_bytes - len(out) + 1)
            except zlib.error as exc:
                raise ValueError(f"The data is not valid {self.format} data: {exc}.") from None
            if len(out) > self.max_output_bytes or engine.unconsumed_tail:
                raise ValueError(f"The data expands past max_output_bytes ({self.max_output_bytes}).")
            if not engine.eof:
                raise ValueError(f"The {self.format} data is truncated.")
            remaining = engine.unused_data
            if self.format == "zlib" and remaining:
                raise ValueError("The zlib data has trailing bytes after the end of the stream.")
            if not remaining.strip(b"\x00"):  # gzip files may end in zero padding
                return bytes(out)


def _create(fmt: str, settings: dict[str, Any]) -> Compressor:
    return Compressor(
        fmt,
        level=_common.number(settings, "level", 6, integer=True, minimum=1, maximum=9),
        max_output_bytes=_common.number(settings, "max_output_bytes", 256 * 1024 * 1024, integer=True, minimum=1),
    )


def create_gzip(settings: dict[str, Any]) -> Compressor:
    return _create("gzip", settings)


def create_zlib(settings: dict[str, Any]) -> Compressor:
    return _create("zlib", settings)
