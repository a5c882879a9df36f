"""Where the host listens and how a request travels: shared by the host (host_session.py) and
its clients (operator_port.py), so a client need not import the host's asyncio server.

One request per connection, newline-delimited JSON:
  client -> host  {"v": 1, "kind": "pause", "args": {...}, "display": "ops shared"}
  host -> client  {"event": "taken", "id": 12}
  host -> client  {"event": "result", "id": 12, "status": "done", "exit_code": 0, "message": ..., "data": ...}
A request the host refuses before taking it (malformed, too large) gets only the result.
A request may also carry `traceparent` (and `tracestate`): the W3C trace context of the span
active in the client, which the host's span for the command continues (trace_context.py).
Hosts that do not know the fields ignore them, so the version stays 1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

SOCKET_NAME = "host.sock"
WIRE_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20  # one request line; a larger one is refused unread


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A name for `path` that fits AF_UNIX's 108 bytes: itself when short enough, else the same
    file reached through /proc/self/fd of its open directory (Linux)."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_PATH", 0))
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


__all__ = ["MAX_REQUEST_BYTES", "SOCKET_NAME", "WIRE_VERSION", "short_path", "socket_path"]
