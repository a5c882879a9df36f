"""The built-in providers against real parts: files, directories, sockets, processes.

Redis is not installed here, so a tiny RESP server written below (asyncio.start_server)
answers PING/GET/SET/DEL/AUTH/SELECT the way redis-server does; the HTTP provider talks to
a real `http.server` in a thread; "unreachable" is a port we bound and then closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import importlib
import os
import signal
import socket
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oneiric_core.domains import Candidate, Domain, HealthResult, HealthStatus
from oneiric_core.providers import (
    BUILTIN_CANDIDATES,
    builtin_candidates,
    cache_memory,
    cache_redis,
    cache_sqlite,
    compress,
    eventbus_memory,
    http_httpx,
    scheduler_interval,
    storage_local,
    task_inline,
    task_subprocess,
    workflow_inline,
)

# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def state_dir(tmp_path: Path) -> str:
    return str(tmp_path)


def closed_port() -> int:
    """A port nothing listens on: bind it, read it, close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def eventually(predicate: Any, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def alive(pid: int) -> bool:
    """True for a running process; a zombie nobody reaped counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def load(factory: str) -> Any:
    module, attr = factory.split(":")
    return getattr(importlib.import_module(module), attr)


# -- cache: memory ---------------------------------------------------------------------------


async def test_memory_cache_stores_bytes_and_text_and_deletes(state_dir: str) -> None:
    cache = cache_memory.create({"state_dir": state_dir})
    await cache.start()
    await cache.set("a", b"\x00bytes")
    await cache.set("b", "text")
    assert await cache.get("a") == b"\x00bytes"
    assert await cache.get("b") == "text"
    assert await cache.get("missing") is None
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert await cache.get("a") is None
    with pytest.raises(TypeError):
        await cache.set("c", 123)  # type: ignore[arg-type]


async def test_memory_cache_evicts_least_recently_used() -> None:
    cache = cache_memory.create({"max_entries": 2})
    await cache.start()
    await cache.set("a", "1")
    await cache.set("b", "2")
    assert await cache.get("a") == "1"  # a is now the most recently used
    await cache.set("c", "3")
    assert await cache.get("b") is None
    assert (await cache.get("a"), await cache.get("c")) == ("1", "3")
    assert len(cache) == 2 and cache.evictions == 1


async def test_memory_cache_ttl_expires() -> None:
    cache = cache_memory.create({})
    await cache.start()
    await cache.set("short", "x", ttl_s=0.2)
    await cache.set("long", "y", ttl_s=60)
    assert await cache.get("short") == "x"
    await asyncio.sleep(0.25)  # the TTL (0.2 s) passes: an outcome of the clock
    assert await cache.get("short") is None
    assert await cache.get("long") == "y"
    with pytest.raises(ValueError):
        await cache.set("bad", "z", ttl_s=0)


async def test_memory_cache_health_does_not_evict_and_stop_is_idempotent() -> None:
    cache = cache_memory.create({"max_entries": 1})
    await cache.start()
    await cache.set("keep", "me")
    result = await cache.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    assert await cache.get("keep") == "me"
    await cache.stop()
    await cache.stop()
    assert (await cache.health()).status is HealthStatus.FAILED
    with pytest.raises(RuntimeError):
        await cache.get("keep")


@pytest.mark.parametrize("bad", [0, -1, True, "10", 1.5])
def test_memory_cache_refuses_bad_max_entries(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        cache_memory.create({"max_entries": bad})


# -- cache: sqlite ---------------------------------------------------------------------------


async def test_sqlite_cache_persists_across_restart(tmp_path: Path) -> None:
    cache = cache_sqlite.create({"state_dir": str(tmp_path)})
    assert cache.path == tmp_path / "cache.sqlite"
    await cache.start()
    await cache.set("text", "héllo")
    await cache.set("blob", b"\x00\xff")
    await cache.set("gone", "soon", ttl_s=0.2)
    assert await cache.get("text") == "héllo"
    await cache.stop()
    await cache.stop()
    assert cache.path.is_file()

    again = cache_sqlite.create({"state_dir": str(tmp_path), "path": "cache.sqlite"})
    await again.start()
    try:
        assert await again.get("text") == "héllo"
        assert await again.get("blob") == b"\x00\xff"
        await asyncio.sleep(0.25)  # the TTL (0.2 s) passes: an outcome of the clock
        assert await again.get("gone") is None
        assert await again.delete("text") is True
        assert await again.get("text") is None
    finally:
        await again.stop()


async def test_sqlite_cache_ttl_and_health(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "c.db"
    cache = cache_sqlite.create({"state_dir": str(tmp_path / "unused"), "path": str(path)})
    assert (await cache.health()).status is HealthStatus.FAILED  # not open yet
    with pytest.raises(RuntimeError):
        await cache.get("x")
    await cache.start()
    assert path.is_file()
    await cache.set("k", "v", ttl_s=0.2)
    assert await cache.get("k") == "v"
    await asyncio.sleep(0.25)  # the TTL (0.2 s) passes: an outcome of the clock
    assert await cache.get("k") is None
    result = await cache.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    await cache.stop()
    assert (await cache.health()).status is HealthStatus.FAILED


def test_sqlite_cache_needs_state_dir_for_relative_path() -> None:
    with pytest.raises(ValueError, match="state_dir"):
        cache_sqlite.create({})


# -- cache: redis (RESP over a real socket) ---------------------------------------------------


class FakeRedis:
    """Just enough of redis-server: RESP2 arrays in; PING GET SET [PX] DEL AUTH SELECT out."""

    def __init__(self, password: str | None = None, silent: bool = False) -> None:
        self.password = password
        self.silent = silent
        self.data: dict[bytes, tuple[bytes, float | None]] = {}
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> FakeRedis:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        authed = self.password is None
        try:
            while True:
                header = await reader.readline()
                if not header:
                    break
                assert header[:1] == b"*", header
                args = []
                for _ in range(int(header[1:])):
                    size = await reader.readline()
                    assert size[:1] == b"$", size
                    args.append((await reader.readexactly(int(size[1:]) + 2))[:-2])
                self.commands.append(args)
                if self.silent:
                    continue
                reply, authed = self.reply(args, authed)
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def reply(self, args: list[bytes], authed: bool) -> tuple[bytes, bool]:
        cmd = args[0].upper()
        if cmd == b"AUTH":
            if args[-1].decode() == self.password:
                return b"+OK\r\n", True
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n", authed
        if not authed:
            return b"-NOAUTH Authentication required.\r\n", authed
        if cmd == b"PING":
            return b"+PONG\r\n", authed
        if cmd == b"SELECT":
            return b"+OK\r\n", authed
        if cmd == b"SET":
            expires = None
            if len(args) == 5 and args[3].upper() == b"PX":
                expires = time.monotonic() + int(args[4]) / 1000
            self.data[args[1]] = (args[2], expires)
            return b"+OK\r\n", authed
        if cmd == b"GET":
            value, expires = self.data.get(args[1], (None, None))
            if value is None or (expires is not None and time.monotonic() >= expires):
                self.data.pop(args[1], None)
                return b"$-1\r\n", authed
            return b"$%d\r\n%s\r\n" % (len(value), value), authed
        if cmd == b"DEL":
            return b":%d\r\n" % sum(self.data.pop(k, None) is not None for k in args[1:]), authed
        return b"-ERR unknown command '%s'\r\n" % args[0], authed


def test_resp_encoding_is_an_array_of_bulk_strings() -> None:
    assert cache_redis.encode_command("SET", "k", b"v\r\n", 5) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$1\r\n5\r\n"
    )
    assert cache_redis.encode_command("GET", "é") == b"*2\r\n$3\r\nGET\r\n$2\r\n\xc3\xa9\r\n"


async def test_resp_parser_reads_every_reply_type() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"+OK\r\n-ERR bad thing\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n"
        b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n-ERR inner\r\n"
    )
    reader.feed_eof()
    assert await cache_redis.read_reply(reader) == "OK"
    err = await cache_redis.read_reply(reader)
    assert isinstance(err, cache_redis.RedisError) and str(err) == "ERR bad thing"
    assert await cache_redis.read_reply(reader) == 42
    assert await cache_redis.read_reply(reader) == b"he\r\no"
    assert await cache_redis.read_reply(reader) is None
    assert await cache_redis.read_reply(reader) is None
    nested = await cache_redis.read_reply(reader)
    assert nested[:2] == [1, b"x"] and isinstance(nested[2][0], cache_redis.RedisError)
    bad = asyncio.StreamReader()
    bad.feed_data(b"?what\r\n")
    with pytest.raises(cache_redis.RedisProtocolError):
        await cache_redis.read_reply(bad)


async def test_redis_cache_set_get_delete_and_ttl_over_resp() -> None:
    async with FakeRedis() as server:
        cache = cache_redis.create({"port": server.port, "key_prefix": "app:"})
        await cache.start()
        assert server.connections == 0  # lazy: start() does not connect
        await cache.set("k", "välue")
        assert await cache.get("k") == "välue".encode()
        await cache.set("t", b"x", ttl_s=0.2)
        assert server.commands[-1] == [b"SET", b"app:t", b"x", b"PX", b"200"]
        assert await cache.get("t") == b"x"
        await asyncio.sleep(0.25)  # the TTL (0.2 s) passes: an outcome of the clock
        assert await cache.get("t") is None
        assert await cache.delete("k") is True
        assert await cache.delete("k") is False
        assert await cache.get("missing") is None
        with pytest.raises(cache_redis.RedisError, match="unknown command"):
            await cache.execute("FLUSHEVERYTHING")
        result = await cache.health()
        assert result.status is HealthStatus.OK and result.latency_ms is not None
        assert server.connections == 1  # one connection reused throughout
        await cache.stop()
        await cache.stop()
        assert not cache.connected


async def test_redis_cache_auth_select_and_decode() -> None:
    async with FakeRedis(password="s3cret") as server:
        cache = cache_redis.create({"port": server.port, "password": "s3cret", "db": 3, "decode": True})
        await cache.set("k", "text")
        assert await cache.get("k") == "text"
        assert server.commands[:2] == [[b"AUTH", b"s3cret"], [b"SELECT", b"3"]]
        await cache.stop()

        wrong = cache_redis.create({"port": server.port, "password": "nope"})
        result = await wrong.health()
        assert result.status is HealthStatus.FAILED and "AUTH refused" in result.message
        await wrong.stop()


async def test_redis_cache_unreachable_fails_health_not_start() -> None:
    port = closed_port()
    cache = cache_redis.create({"port": port})
    await cache.start()  # no network: an unreachable server is caught by the health gate
    result = await cache.health()
    assert result.status is HealthStatus.FAILED
    assert result.message == f"Cannot reach redis at 127.0.0.1:{port}: connection refused."
    with pytest.raises(ConnectionRefusedError):
        await cache.get("k")
    await cache.stop()


async def test_redis_cache_silent_server_times_out() -> None:
    async with FakeRedis(silent=True) as server:
        cache = cache_redis.create({"port": server.port, "timeout_s": 0.1})
        result = await cache.health()
        assert result.status is HealthStatus.FAILED and "no answer within 0.1 s" in result.message
        assert not cache.connected  # a timed-out connection is dropped, never reused
        await cache.stop()


async def test_redis_cache_reconnects_after_server_drops_connection() -> None:
    async with FakeRedis() as server:
        cache = cache_redis.create({"port": server.port})
        await cache.set("k", "v")
        assert cache._writer is not None
        cache._writer.transport.abort()  # the socket dies under us
        await asyncio.sleep(0)
        assert await cache.get("k") == b"v"
        await cache.stop()


@pytest.mark.parametrize(("settings", "name"), [
    ({"port": 0}, "port"), ({"port": 70000}, "port"), ({"db": -1}, "db"),
    ({"timeout_s": 0}, "timeout_s"), ({"host": ""}, "host"), ({"password": 5}, "password"),
])
def test_redis_cache_refuses_bad_settings(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        cache_redis.create(settings)


# -- storage: local --------------------------------------------------------------------------


async def test_local_storage_put_get_list_delete(tmp_path: Path) -> None:
    storage = storage_local.create({"state_dir": str(tmp_path)})
    assert not (tmp_path / "storage").exists()  # create() touches nothing
    await storage.start()
    assert (tmp_path / "storage").is_dir()
    await storage.put("a.txt", b"alpha")
    await storage.put("reports/2024/b.bin", b"\x00\x01")
    await storage.put("a.txt", b"alpha 2")  # overwrite
    assert await storage.get("a.txt") == b"alpha 2"
    assert (tmp_path / "storage" / "reports" / "2024" / "b.bin").read_bytes() == b"\x00\x01"
    assert await storage.list() == ["a.txt", "reports/2024/b.bin"]
    assert await storage.delete("a.txt") is True
    assert await storage.delete("a.txt") is False
    with pytest.raises(FileNotFoundError):
        await storage.get("a.txt")
    assert await storage.list() == ["reports/2024/b.bin"]
    await storage.stop()
    await storage.stop()


@pytest.mark.parametrize("name", ["../escape", "a/../../b", "/etc/passwd", "..", "a/..", "", "sub\\..\\x"])
async def test_local_storage_refuses_names_outside_root(tmp_path: Path, name: str) -> None:
    storage = storage_local.create({"state_dir": str(tmp_path)})
    await storage.start()
    with pytest.raises(ValueError):
        await storage.put(name, b"x")
    with pytest.raises(ValueError):
        await storage.get(name)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "b").exists()


async def test_local_storage_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    storage = storage_local.create({"state_dir": str(tmp_path), "root": str(tmp_path / "root")})
    await storage.start()
    (tmp_path / "root" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="symlink"):
        await storage.put("link/x", b"x")
    assert list(outside.iterdir()) == []


async def test_local_storage_health_ok_then_failed_when_root_unwritable(tmp_path: Path) -> None:
    storage = storage_local.create({"state_dir": str(tmp_path), "root": "files"})
    assert (await storage.health()).status is HealthStatus.FAILED  # not started
    await storage.start()
    result = await storage.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    assert await storage.list() == []  # the probe left nothing behind
    root = tmp_path / "files"
    root.rmdir()
    root.write_bytes(b"now a file, so nothing can be written under it")  # works even as root
    result = await storage.health()
    assert result.status is HealthStatus.FAILED
    assert result.message.startswith(f"Cannot write to the storage root {root}: ")


# -- http: httpx against a real http.server --------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes = {"/ok": 200, "/health": 200, "/api/health": 200, "/missing": 404, "/boom": 500, "/moved": 302}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        status = self.routes.get(self.path, 404)
        body = f"{self.command} {self.path}".encode()
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/ok", HealthStatus.OK, 200),
    ("/moved", HealthStatus.OK, 302),
    ("/missing", HealthStatus.DEGRADED, 404),
    ("/boom", HealthStatus.FAILED, 500),
])
async def test_httpx_health_reads_the_status(http_base: str, path: str, status: HealthStatus, code: int) -> None:
    client = http_httpx.create({"health_url": http_base + path, "timeout_s": 2})
    await client.start()
    try:
        result = await client.health()
        assert result.status is status
        assert f"GET {http_base}{path} returned {code}" in result.message
        assert result.latency_ms is not None
    finally:
        await client.stop()


async def test_httpx_request_and_relative_health_url(http_base: str) -> None:
    client = http_httpx.create({"base_url": http_base + "/api/", "health_url": "health"})
    await client.start()
    response = await client.request("POST", "/ok")
    assert response.status_code == 404  # /api/ok: relative to base_url
    response = await client.request("GET", http_base + "/ok")
    assert (response.status_code, response.text) == (200, "GET /ok")
    assert (await client.health()).status is HealthStatus.OK
    await client.stop()
    await client.stop()
    with pytest.raises(RuntimeError):
        await client.request("GET", "/ok")
    assert (await client.health()).status is HealthStatus.FAILED


async def test_httpx_without_health_url_and_transport_error() -> None:
    client = http_httpx.create({})
    await client.start()
    assert await client.health() == HealthResult.ok("no health URL configured")
    await client.stop()

    port = closed_port()
    down = http_httpx.create({"health_url": f"http://127.0.0.1:{port}/health", "timeout_s": 1})
    await down.start()
    result = await down.health()
    assert result.status is HealthStatus.FAILED
    assert result.message.startswith(f"GET http://127.0.0.1:{port}/health failed: ConnectError")
    await down.stop()


@pytest.mark.parametrize(("settings", "name"), [
    ({"health_url": "/health"}, "health_url"), ({"base_url": "not a url"}, "base_url"),
    ({"timeout_s": -1}, "timeout_s"), ({"headers": {"x": 1}}, "headers"),
])
def test_httpx_refuses_bad_settings(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        http_httpx.create(settings)


# -- service: interval scheduler -------------------------------------------------------------


async def test_scheduler_runs_sync_and_async_jobs() -> None:
    scheduler = scheduler_interval.create({})
    ticks: list[str] = []

    async def async_job() -> None:
        ticks.append("async")

    scheduler.add_job("async", 0.02, async_job, run_now=True)
    scheduler.add_job("sync", 0.02, lambda: ticks.append("sync"))
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add_job("sync", 1, lambda: None)
    with pytest.raises(ValueError, match="interval"):
        scheduler.add_job("fast", 0, lambda: None)
    await scheduler.start()
    await eventually(lambda: ticks.count("async") >= 3 and ticks.count("sync") >= 2)
    result = await scheduler.health()
    assert result.status is HealthStatus.OK and result.message == "2 job(s) on schedule"
    assert {job["name"]: job["runs"] >= 2 for job in scheduler.jobs()} == {"async": True, "sync": True}
    assert scheduler.remove_job("sync") is True
    await scheduler.stop()
    await scheduler.stop()
    assert (await scheduler.health()).status is HealthStatus.FAILED
    with pytest.raises(RuntimeError):
        scheduler.add_job("late", 1, lambda: None)


async def test_scheduler_job_added_while_running_and_failing_job_degrades() -> None:
    scheduler = scheduler_interval.create({})
    await scheduler.start()

    def broken() -> None:
        raise RuntimeError("disk full")

    scheduler.add_job("broken", 0.02, broken, run_now=True)
    await eventually(lambda: scheduler.jobs()[0]["failures"] >= 1)
    result = await scheduler.health()
    assert result.status is HealthStatus.DEGRADED
    assert result.message == "Job 'broken' failed its last run: RuntimeError: disk full."
    await scheduler.stop()


async def test_scheduler_overdue_job_degrades_and_stop_cancels_it() -> None:
    scheduler = scheduler_interval.create({})
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.add_job("stuck", 0.02, stuck, run_now=True)
    await scheduler.start()
    await eventually(lambda: scheduler.jobs()[0]["running"])
    await asyncio.sleep(0.07)  # the next beat was due 0.02 s after the start: now > 2 intervals late
    result = await scheduler.health()
    assert result.status is HealthStatus.DEGRADED and "'stuck' is overdue" in result.message
    assert scheduler.jobs()[0]["runs"] == 0  # never overlapped
    await scheduler.stop()
    assert cancelled.is_set()


async def test_scheduler_dead_loop_fails_health() -> None:
    scheduler = scheduler_interval.create({})
    await scheduler.start()
    assert (await scheduler.health()).status is HealthStatus.OK
    loop_task = scheduler._loop_task
    assert loop_task is not None
    loop_task.cancel()
    await asyncio.gather(loop_task, return_exceptions=True)
    result = await scheduler.health()
    assert result.status is HealthStatus.FAILED and "not running" in result.message
    await scheduler.stop()


# -- task: inline ----------------------------------------------------------------------------


async def test_inline_runner_runs_plain_and_coroutine_functions() -> None:
    runner = task_inline.create({})
    await runner.start()

    async def add(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    assert await runner.run(add, 1, b=2) == 3
    assert await runner.run(lambda x: x * 2, 21) == 42
    assert await runner.run(threading.get_ident) != threading.get_ident()  # plain ones off the loop
    with pytest.raises(ZeroDivisionError):
        await runner.run(lambda: 1 / 0)
    result = await runner.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    await runner.stop()
    await runner.stop()
    with pytest.raises(RuntimeError):
        await runner.run(add, 1)
    assert (await runner.health()).status is HealthStatus.FAILED


async def test_inline_runner_stop_drains_then_cancels() -> None:
    runner = task_inline.create({"drain_timeout_s": 0.3})
    await runner.start()
    quick = asyncio.create_task(runner.run(asyncio.sleep, 0.02, "done"))
    slow = asyncio.create_task(runner.run(asyncio.sleep, 30, "never"))
    await eventually(lambda: runner.inflight == 2)
    started = time.monotonic()
    await runner.stop()
    assert time.monotonic() - started < 2.0
    assert await quick == "done"
    with pytest.raises(RuntimeError, match="stopped before the task finished"):
        await slow


# -- task: subprocess ------------------------------------------------------------------------


async def test_subprocess_runner_collects_output_and_exit_code() -> None:
    runner = task_subprocess.create({})
    await runner.start()
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = await runner.run([sys.executable, "-c", code])
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.ok and result.duration_ms > 0
    ok = await runner.run([os.path.realpath(sys.executable), "-c", "print(6 * 7)"])
    assert ok.ok and ok.stdout.strip() == b"42"
    with pytest.raises(PermissionError, match="allowed_programs"):
        await runner.run(["/bin/sh", "-c", "echo no"])
    health = await runner.health()
    assert health.status is HealthStatus.OK and health.latency_ms is not None
    await runner.stop()
    await runner.stop()
    assert (await runner.health()).status is HealthStatus.FAILED


async def test_subprocess_runner_kills_child_and_grandchild_on_timeout() -> None:
    runner = task_subprocess.create({})
    await runner.start()
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print(child.pid, flush=True)\n"
        "import os; print(os.getpid(), flush=True)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    with pytest.raises(task_subprocess.SubprocessTimeout) as caught:
        await runner.run([sys.executable, "-c", code], timeout_s=1.0)
    assert time.monotonic() - started < 6
    assert "did not finish within 1 s and was killed" in str(caught.value)
    pids = caught.value.stdout.split()
    assert len(pids) == 2, f"the child did not get to print both pids before the timeout: {pids}"
    grandchild, child = (int(pid) for pid in pids)
    await eventually(lambda: not alive(child) and not alive(grandchild))
    assert runner.running == 0


async def test_subprocess_runner_stop_kills_running_children() -> None:
    runner = task_subprocess.create({"allowed_programs": [sys.executable]})
    await runner.start()
    run = asyncio.create_task(runner.run([sys.executable, "-c", "import time; time.sleep(30)"]))
    await eventually(lambda: runner.running == 1)
    await runner.stop()
    result = await asyncio.wait_for(run, 5)
    assert result.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("settings", "name"), [
    ({"allowed_programs": []}, "allowed_programs"), ({"allowed_programs": "python"}, "allowed_programs"),
    ({"default_timeout_s": 0}, "default_timeout_s"),
])
def test_subprocess_runner_refuses_bad_settings(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        task_subprocess.create(settings)


# -- event: memory bus -----------------------------------------------------------------------


async def test_memory_bus_delivers_counts_and_unsubscribes() -> None:
    bus = eventbus_memory.create({})
    await bus.start()
    seen: list[tuple[str, Any]] = []

    async def async_handler(topic: str, payload: Any) -> None:
        seen.append(("async", payload))

    def broken(topic: str, payload: Any) -> None:
        raise ValueError("nope")

    unsubscribe = bus.subscribe("orders", lambda topic, payload: seen.append(("sync", payload)))
    bus.subscribe("orders", async_handler)
    bus.subscribe("orders", broken)
    bus.subscribe("*", lambda topic, payload: seen.append(("all", topic)))
    assert await bus.publish("orders", 1) == 3  # the broken handler is not counted
    assert seen == [("sync", 1), ("async", 1), ("all", "orders")]
    assert bus.errors == 1
    assert await bus.publish("nobody-listens", 2) == 1  # just the wildcard
    unsubscribe()
    seen.clear()
    assert await bus.publish("orders", 3) == 2
    assert ("sync", 3) not in seen
    with pytest.raises(ValueError):
        await bus.publish("*", 4)

    seen.clear()
    result = await bus.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    assert seen == []  # the probe is private: the wildcard subscriber never saw it
    await bus.stop()
    await bus.stop()
    assert (await bus.health()).status is HealthStatus.FAILED
    with pytest.raises(RuntimeError):
        await bus.publish("orders", 5)


# -- workflow: inline ------------------------------------------------------------------------


async def test_inline_workflow_chains_results() -> None:
    runner = workflow_inline.create({})
    await runner.start()

    async def double(value: int) -> int:
        return value * 2

    run = await runner.run([("load", lambda _: 20), ("double", double), ("inc", lambda v: v + 2)], initial="ignored")
    assert run.results == [("load", 20), ("double", 40), ("inc", 42)]
    assert run.output == 42 and run.duration_ms >= 0
    result = await runner.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    await runner.stop()
    await runner.stop()
    assert (await runner.health()).status is HealthStatus.FAILED


async def test_inline_workflow_stops_at_first_failure() -> None:
    runner = workflow_inline.create({})
    await runner.start()
    reached: list[str] = []

    def explode(value: int) -> int:
        raise KeyError("customer")

    steps = [("fetch", lambda v: v + 1), ("transform", explode), ("store", lambda v: reached.append("store"))]
    with pytest.raises(workflow_inline.WorkflowStepFailed) as caught:
        await runner.run(steps, initial=1)
    failure = caught.value
    assert (failure.index, failure.step, failure.results) == (1, "transform", [("fetch", 2)])
    assert str(failure) == "Workflow step 2 'transform' failed: KeyError: 'customer'."
    assert reached == []
    with pytest.raises(ValueError):
        await runner.run([])
    with pytest.raises(ValueError):
        await runner.run([("only-a-name",)])  # type: ignore[list-item]
    await runner.stop()


async def test_inline_workflow_step_timeout() -> None:
    runner = workflow_inline.create({"step_timeout_s": 0.05})
    await runner.start()
    with pytest.raises(workflow_inline.WorkflowStepFailed, match="step 1 'slow' failed: TimeoutError"):
        await runner.run([("slow", lambda v: asyncio.sleep(10))])
    await runner.stop()


# -- action: compress ------------------------------------------------------------------------


@pytest.mark.parametrize(("factory", "decode"), [
    (compress.create_gzip, gzip.decompress), (compress.create_zlib, zlib.decompress),
])
async def test_compress_round_trips_in_a_standard_format(factory: Any, decode: Any) -> None:
    action = factory({"level": 9})
    await action.start()
    small = b"hello " * 100
    large = os.urandom(1024) * 100  # over 64 KiB: the worker-thread path
    for payload in (b"", small, large):
        packed = await action.compress(payload)
        assert decode(packed) == payload
        assert await action.decompress(packed) == payload
    assert len(await action.compress(small)) < len(small)
    with pytest.raises(ValueError, match="not valid"):
        await action.decompress(b"definitely not compressed")
    with pytest.raises(ValueError, match="truncated"):
        await action.decompress((await action.compress(small))[:-6])
    result = await action.health()
    assert result.status is HealthStatus.OK and result.latency_ms is not None
    await action.stop()
    await action.stop()
    assert (await action.health()).status is HealthStatus.FAILED


async def test_compress_stops_a_decompression_bomb_and_reads_multi_member_gzip() -> None:
    action = compress.create_gzip({"max_output_bytes": 1000})
    await action.start()
    with pytest.raises(ValueError, match="max_output_bytes"):
        await action.decompress(gzip.compress(b"\x00" * 100_000))
    assert await action.decompress(gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    assert await action.compress(b"same") == await action.compress(b"same")  # mtime fixed


@pytest.mark.parametrize("level", [0, 10, "6", True, 5.5])
def test_compress_refuses_bad_level(level: Any) -> None:
    with pytest.raises(ValueError, match="'level'"):
        compress.create_zlib({"level": level})


# -- the candidate list ----------------------------------------------------------------------


def test_builtin_candidates_cover_every_key() -> None:
    table = {(c.domain, c.key, c.provider): c.priority for c in BUILTIN_CANDIDATES}
    assert table == {
        (Domain.ADAPTER, "cache", "memory"): 10,
        (Domain.ADAPTER, "cache", "sqlite"): 0,
        (Domain.ADAPTER, "cache", "redis"): 0,
        (Domain.ADAPTER, "storage", "local"): 0,
        (Domain.ADAPTER, "http", "httpx"): 0,
        (Domain.SERVICE, "scheduler", "interval"): 0,
        (Domain.TASK, "runner", "inline"): 10,
        (Domain.TASK, "runner", "subprocess"): 0,
        (Domain.EVENT, "bus", "memory"): 0,
        (Domain.WORKFLOW, "runner", "inline"): 0,
        (Domain.ACTION, "compress", "gzip"): 10,
        (Domain.ACTION, "compress", "zlib"): 0,
    }
    for candidate in BUILTIN_CANDIDATES:
        assert isinstance(candidate, Candidate)
        assert candidate.source == "builtin" and candidate.stack_level == 0
        assert candidate.factory.startswith("oneiric_core.providers.")
        assert candidate.metadata["description"].endswith(".")
    assert len({c.ident for c in BUILTIN_CANDIDATES}) == len(BUILTIN_CANDIDATES)


def test_builtin_candidates_returns_fresh_copies() -> None:
    first = builtin_candidates()
    first[0].settings["max_entries"] = 1
    first[0].metadata["description"] = "changed"
    assert BUILTIN_CANDIDATES[0].settings["max_entries"] == 1024
    assert builtin_candidates()[0].metadata["description"] != "changed"
    assert [dataclasses.astuple(c) for c in builtin_candidates()] == \
        [dataclasses.astuple(c) for c in BUILTIN_CANDIDATES]


def test_every_factory_imports_and_creates_without_io(tmp_path: Path) -> None:
    state = tmp_path / "not-created-yet"
    for candidate in builtin_candidates():
        provider = load(candidate.factory)({**candidate.settings, "state_dir": str(state)})
        for method in ("start", "health", "stop"):
            assert asyncio.iscoroutinefunction(getattr(provider, method)), (candidate.factory, method)
    assert not state.exists()  # no factory touched the disk


async def test_every_builtin_answers_health_after_start(tmp_path: Path) -> None:
    unreachable_redis_port = closed_port()
    for candidate in builtin_candidates():
        settings = {**candidate.settings, "state_dir": str(tmp_path)}
        if candidate.provider == "redis":
            settings["port"] = unreachable_redis_port
        provider = load(candidate.factory)(settings)
        await provider.start()
        try:
            result = await provider.health()
        finally:
            await provider.stop()
            await provider.stop()  # idempotent
        assert isinstance(result, HealthResult), candidate.factory
        expected = HealthStatus.FAILED if candidate.provider == "redis" else HealthStatus.OK
        assert result.status is expected, (candidate.factory, result)
        if candidate.provider == "httpx":
            assert result.message == "no health URL configured"
