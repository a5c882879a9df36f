"""adapter/cache `redis`: a cache on a Redis server, spoken to in RESP2 directly.

It exists so several hosts can share one cache. It needs no client library: commands go
out as RESP arrays of bulk strings over one `asyncio.open_connection` socket, and the five
reply types (+ - : $ *) are parsed here. The connection is opened lazily on the first
command, so `start()` never touches the network: swapping to an unreachable server fails
at the health gate with a readable sentence, not while the instance is being built.

Redis stores bytes: `get` returns bytes, or str when the `decode` setting is true.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..domains import HealthResult
from . import _common
from .cache_memory import Value, check_entry


class RedisError(Exception):
    """An error reply (`-ERR ...`) from the server."""


class RedisProtocolError(Exception):
    """A reply that is not valid RESP; the connection is dropped after one."""


def encode_command(*args: Any) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = str(arg).encode("ascii")
        else:
            raise TypeError(f"redis command arguments must be bytes, str or int, got {type(arg).__name__}.")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def read_reply(reader: asyncio.StreamReader) -> Any:
    """Read one RESP2 reply. Error replies come back as RedisError instances, not raised,
    so a whole reply (even an array holding errors) is always consumed."""
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode("utf-8", "replace")
    if kind == b"-":
        return RedisError(body.decode("utf-8", "replace"))
    try:
        if kind == b":":
            return int(body)
        if kind == b"$":
            length = int(body)
            if length < 0:
                return None
            data = await reader.readexactly(length + 2)
            if data[-2:] != b"\r\n":
                raise RedisProtocolError("bulk string is not terminated by CRLF")
            return data[:-2]
        if kind == b"*":
            count = int(body)
            if count < 0:
                return None
            return [await read_reply(reader) for _ in range(count)]
    except ValueError as exc:
        raise RedisProtocolError(f"bad length in reply line {line!r}") from exc
    raise RedisProtocolError(f"unknown reply type in line {line!r}")


class RedisCache:
    def __init__(
        self, host: str, port: int, db: int, password: str | None, username: str | None,
        timeout_s: float, key_prefix: str, decode: bool,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self.timeout_s = timeout_s
        self.key_prefix = key_prefix
        self.decode = decode
        self._password, self._username = password, username
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()  # one command in flight on the one connection

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def start(self) -> None:
        """Nothing to do: the connection opens on the first command."""

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply; an error reply raises RedisError."""
        async with self._lock:
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(self.timeout_s):
                    reply = await self._roundtrip(args)
            except BaseException:
                # After a timeout, cancel or broken read the stream position is unknown.
                await self._close()
                raise
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def get(self, key: str) -> Value | None:
        check_entry(key)
        value = await self.execute("GET", self.key_prefix + key)
        if value is None:
            return None
        return value.decode("utf-8") if self.decode else value

    async def set(self, key: str, value: Value, ttl_s: float | None = None) -> None:
        check_entry(key, value, ttl_s)
        args: list[Any] = ["SET", self.key_prefix + key, value]
        if ttl_s is not None:
            args += ["PX", max(1, round(ttl_s * 1000))]
        await self.execute(*args)

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when it was present."""
        check_entry(key)
        return await self.execute("DEL", self.key_prefix + key) > 0

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            reply = await self.execute("PING")
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            return HealthResult.failed(f"Cannot reach redis at {self.address}: {_reason(exc, self.timeout_s)}.",
                                       _common.elapsed_ms(started))
        except (RedisError, RedisProtocolError, asyncio.LimitOverrunError) as exc:  # refused, or not RESP
            return HealthResult.failed(f"Redis at {self.address} failed the PING probe: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))
        latency = _common.elapsed_ms(started)
        if reply != "PONG":
            return HealthResult.failed(f"Redis at {self.address} answered PING with {reply!r} instead of PONG.",
                                       latency)
        return HealthResult.ok(f"PONG from {self.address}", latency)

    async def stop(self) -> None:
        async with self._lock:
            await self._close()

    # -- connection --------------------------------------------------------------------

    async def _roundtrip(self, args: tuple[Any, ...]) -> Any:
        if not self.connected:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        self._writer.write(encode_command(*args))
        await self._writer.drain()
        return await read_reply(self._reader)

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        if self._password is not None:
            auth = ["AUTH", self._username, self._password] if self._username else ["AUTH", self._password]
            await self._handshake(*auth)
        if self.db:
            await self._handshake("SELECT", self.db)

    async def _handshake(self, *args: Any) -> None:
        assert self._reader is not None and self._writer is not None
        self._writer.write(encode_command(*args))
        await self._writer.drain()
        reply = await read_reply(self._reader)
        if isinstance(reply, RedisError):
            raise RedisError(f"{args[0]} refused: {reply}")

    async def _close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass


def _reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return _common.describe(exc)


def create(settings: dict[str, Any]) -> RedisCache:
    return RedisCache(
        host=_common.text(settings, "host", "127.0.0.1"),
        port=_common.number(settings, "port", 6379, integer=True, minimum=1, maximum=65535),
        db=_common.number(settings, "db", 0, integer=True, minimum=0),
        password=_common.text(settings, "password", None, allow_none=True),
        username=_common.text(settings, "username", None, allow_none=True),
        timeout_s=_common.number(settings, "timeout_s", 2.0, positive=True),
        key_prefix=_key_prefix(settings),
        decode=_common.flag(settings, "decode", False),
    )


def _key_prefix(settings: dict[str, Any]) -> str:
    value = settings.get("key_prefix", "")
    if not isinstance(value, str):
        raise ValueError(f"Setting 'key_prefix' must be a string, got {value!r}.")
    return value
