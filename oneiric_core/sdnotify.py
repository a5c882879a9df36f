"""systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram on a unix socket.

A `Type=notify` unit learns from READY=1 that the host serves (so `systemctl start` returns
only then, and units ordered after it start after it), from WATCHDOG=1 that its event loop
still turns (`WatchdogSec=` restarts a hung host), from STOPPING=1 that shutdown began, and
from EXTEND_TIMEOUT_USEC that a start or stop still makes progress past its timeout.
NOTIFY_SOCKET is a filesystem path or, starting with '@', a name in the abstract namespace.
Outside systemd (no NOTIFY_SOCKET) every call does nothing, and a failed send never stops
the host: the protocol is advisory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1", several assignments separated by newlines) to the
    service manager; True when a datagram was sent."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False  # unset, or a transport this host does not speak (vsock)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def extend_timeout(seconds: float, status: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Ask for `seconds` more before the current start or stop timeout may fire
    (EXTEND_TIMEOUT_USEC: systemd kills the service only once it is past the unit's own
    timeout and no such message came within the last one's span), with a STATUS= line."""
    state = f"EXTEND_TIMEOUT_USEC={round(seconds * 1_000_000)}"
    return notify(state + (f"\nSTATUS={status}" if status else ""), env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises; None when the watchdog is off or meant for another process (WATCHDOG_PID)."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", "").strip())
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


def supervision(env: Mapping[str, str] | None = None) -> dict[str, object]:
    """What supervises this process, as the host records it in its `host-started` event (the
    service-supervisor runbook reads it): under systemd (INVOCATION_ID, which systemd sets
    for every unit it starts), with the notify protocol (NOTIFY_SOCKET), with a watchdog
    (WATCHDOG_USEC, in seconds), and the unit's invocation id."""
    env = os.environ if env is None else env
    interval = watchdog_interval(env)
    return {"systemd": bool(env.get("INVOCATION_ID") or env.get("NOTIFY_SOCKET")),
            "notify": bool(env.get("NOTIFY_SOCKET")),
            "watchdog_s": None if interval is None else round(interval * 2, 3),
            "invocation_id": env.get("INVOCATION_ID") or None}
