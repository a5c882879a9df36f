"""`oneiric run`: the headless host, for systemd (deploy/systemd/oneiric.service).

It makes this process the host of its state directory and keeps it so until SIGTERM,
SIGINT or SIGHUP (the three ways a host is asked to go: systemd or kill, Ctrl-C on a
foreground `oneiric run`, the SSH session it was started from going away; none of them
may skip the graceful stop below). Every journal event goes to stdout as one JSON line, so journald (or any log
shipper) keeps the host's story without reading SQLite; providers' own `logging` records go
there too, and under systemd every line carries its priority (host_output.py). On a signal it
stops taking commands and lets the running ones finish, then stops every provider after its
in-flight work, each phase within the stop timeout; it journals `host-stopped`, releases the
lease and exits 0. It speaks systemd's notify protocol: READY=1 once every provider has
started, WATCHDOG=1 while the event loop turns and the lease is still this host's, STOPPING=1
when shutdown begins, then EXTEND_TIMEOUT_USEC every few seconds while the stop goes on, so a
host still draining its work is not killed at TimeoutStopSec= (one whose event loop hangs stops
sending them, and is).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import IO

from . import sdnotify
from .engine import HEARTBEAT_S, Engine
from .errors import OneiricError
from .host_output import LineWriter, capture_logging, log_level, to_journal
from .provider_calls import contain_task_exits
from .store import StoreError

# While stopping: how often the host tells systemd it is still at it, and how long each message
# buys. Longer than two intervals, so one tick late under load does not get a draining host killed.
EXTEND_EVERY_S = 2.0
EXTEND_BY_S = 5.0


class LeaseLost(OneiricError):
    """Another process took this host's lease (this one stalled past the staleness limit)."""


def run_host(settings: str | Path, *, state_dir: str | Path | None = None, read_only: bool | None = None,
             stop_timeout: float | None = None, out: IO[str] | None = None, node: str | None = None) -> int:
    """Host until a signal; returns the exit code (HostBusy, LeaseLost and settings errors
    are raised as OneiricError for the CLI to print as one sentence)."""
    level = log_level()  # a bad ONEIRIC_LOG_LEVEL is a usage error before anything starts
    out = out or sys.stdout
    writer = LineWriter(out, prefixed=to_journal(out))
    engine = Engine(settings, state_dir=state_dir, read_only=read_only, node=node)
    engine.bus.add_listener(writer.event)
    release_logging = capture_logging(writer, level)
    try:
        return asyncio.run(_serve(engine, stop_timeout))
    finally:
        release_logging()
        engine.close()


async def _serve(engine: Engine, stop_timeout: float | None) -> int:
    loop = asyncio.get_running_loop()
    contain_task_exits(loop)  # a provider's own task raising SystemExit must not end the host
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    await engine.start()
    sdnotify.notify(f"READY=1\nSTATUS=hosting {engine.state_dir}\nMAINPID={os.getpid()}")
    holder = await _until_stopped(engine, stopping)
    sdnotify.notify("STOPPING=1\nSTATUS=stopping: finishing in-flight work")
    await _stop(engine, stop_timeout)
    if holder is not None:
        raise LeaseLost(f"This host lost its lease to {holder} and stopped its providers.")
    return 0


async def _stop(engine: Engine, stop_timeout: float | None) -> None:
    """engine.stop(), telling systemd every EXTEND_EVERY_S that the host is still stopping: the
    stop is bounded by the engine (each wait within the stop timeout), not by TimeoutStopSec=."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    stopping = asyncio.ensure_future(engine.stop(stop_timeout))
    while not (await asyncio.wait({stopping}, timeout=EXTEND_EVERY_S))[0]:
        sdnotify.extend_timeout(EXTEND_BY_S, f"stopping: still finishing in-flight work after "
                                f"{loop.time() - began:.0f}s")
    stopping.result()


async def _until_stopped(engine: Engine, stopping: asyncio.Event) -> str | None:
    """Wait for a signal, pinging the watchdog meanwhile; returns who took the lease if
    another process did (then this host must stop: two hosts would run every provider twice)."""
    interval = sdnotify.watchdog_interval()
    tick = min(interval, HEARTBEAT_S) if interval else HEARTBEAT_S
    next_ping = 0.0
    loop = asyncio.get_running_loop()
    while True:
        if interval and loop.time() >= next_ping:
            sdnotify.notify("WATCHDOG=1")
            next_ping = loop.time() + interval
        try:
            await asyncio.wait_for(stopping.wait(), tick)
            return None
        except TimeoutError:
            pass
        holder = lease_taken(engine)
        if holder is not None:
            return holder


def lease_taken(engine: Engine) -> str | None:
    """Who holds the lease now if it is no longer this process's (None while it is ours,
    or while the store cannot tell: a store error is not a reason to stop serving)."""
    try:
        lease, _ = engine.host()
    except StoreError as exc:
        engine.store_error = str(exc)
        return None
    if lease is None:
        return "nobody (the lease was released by another process)"
    if (lease.pid, lease.hostname) != (os.getpid(), socket.gethostname()):
        return f"pid {lease.pid} on {lease.hostname}"
    return None
