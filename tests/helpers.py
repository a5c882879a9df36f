"""Building real settings directories for engine tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "settings"

FAST_APP = """\
lifecycle:
  activation_timeout: 1.0
  health_timeout: 0.5
  cleanup_timeout: 1.0
health:
  interval_s: 3600
factory_allowlist:
  - oneiric_core.providers.
  - tests.fixture_providers
"""


def demo_copy(tmp_path: Path, *, fast: bool = True) -> Path:
    """The demo settings copied to tmp_path, with short timeouts and the fixture providers allowed."""
    target = tmp_path / "settings"
    shutil.copytree(DEMO, target)
    if fast:
        (target / "app.yml").write_text(FAST_APP)
    return target


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def many_candidates(count: int, factory: str = "oneiric_core.providers.cache_memory:create") -> str:
    """A domain file's YAML with `count` keys k000, k001, ... of one cheap built-in candidate each."""
    lines = ["candidates:"]
    for k in range(count):
        lines += [f"  - key: k{k:03d}", f"    provider: p{k:03d}", f"    factory: {factory}"]
    return "\n".join(lines) + "\n"


def fixture_candidates(key: str, *providers: tuple[str, str], **extra: int) -> str:
    """YAML for candidates of adapter/<key> built by tests.fixture_providers factories."""
    lines = ["candidates:"]
    for name, factory in providers:
        lines += [
            f"  - key: {key}",
            f"    provider: {name}",
            f"    factory: tests.fixture_providers:{factory}",
            "    settings:",
            f"      name: {name}",
        ]
    return "\n".join(lines) + "\n"


HOST_SCRIPT = """
import asyncio, sys
from oneiric_core.engine import Engine

async def main():
    engine = Engine(sys.argv[1], state_dir=sys.argv[2], actor="host-proc")
    await engine.start()
    await engine._swap_now("adapter", "cache", "sqlite")
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def start_host_process(settings: Path, state: Path):
    """A real host in another process (its cache swapped to sqlite); returns once it is ready.
    The caller kills it."""
    import subprocess
    import sys

    host = subprocess.Popen([sys.executable, "-c", HOST_SCRIPT, str(settings), str(state)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    line = host.stdout.readline().strip()
    if line != "ready":
        host.kill()
        raise AssertionError(f"the host process did not start (said {line!r})")
    return host


def settings_with(tmp_path: Path, app_yml_extra: str) -> Path:
    """The demo settings with FAST_APP plus `app_yml_extra` as app.yml."""
    settings = tmp_path / "settings"
    shutil.copytree(DEMO, settings)
    (settings / "app.yml").write_text(FAST_APP + app_yml_extra)
    return settings


async def until(predicate: Callable[[], Any], what: str = "", timeout: float = 10.0, poll: float = 0.01) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        await asyncio.sleep(poll)


@contextlib.asynccontextmanager
async def host_with_cache_paused_before_start(settings: Path, state: Path):
    """A started host Engine whose adapter/cache was paused (by another process) before it
    started: inactive, nothing serving it. Stopped and closed afterwards."""
    from oneiric_core.engine import Engine

    offline = Engine(settings, state_dir=state, actor="carol")
    offline.pause("adapter", "cache", note="before the host started")
    offline.close()
    engine = Engine(settings, state_dir=state, actor="tester")
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
        engine.close()


# Who the tests act as: this process's OS account, with ONEIRIC_OPERATOR as its display name
# (principal.py), e.g. "root (tester)".
LOGIN = pwd.getpwuid(os.getuid()).pw_name


def shown(display: str) -> str:
    """How the journal and the front doors name this account with display name `display`."""
    return f"{LOGIN} ({display})"


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 10.0, poll: float = 0.05) -> Any:
    """The blocking `until`: poll `predicate` until it returns something truthy (returned);
    fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout}s: {what}")


# -- a redis that answers PING, for the demo's redis provider -------------------------------------

def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def pong_server(port: int):
    """A server on `port` that answers each PING with +PONG (a redis health check); the caller
    closes it."""
    import asyncio

    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.upper().startswith(b"PING"):
                    writer.write(b"+PONG\r\n")
                    await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def demo_with_redis_port(tmp_path: Path) -> Path:
    """The demo (demo_copy) with its redis pointed at a free port, written to redis.port: a test
    brings the backend up there with pong_server."""
    settings = demo_copy(tmp_path)
    port = free_port()
    text = (settings / "adapters.yml").read_text().replace("port: 6399", f"port: {port}")
    (settings / "adapters.yml").write_text(text)
    settings.joinpath("redis.port").write_text(str(port))
    return settings
