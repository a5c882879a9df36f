"""Who is acting: every journaled change and every approval is attributed to an operator;
and whether a process another record names (a host's lease, an incident's walker) still runs."""

from __future__ import annotations

import getpass
import os
import socket


def operator_identity(env: dict[str, str] | None = None) -> str:
    """`ONEIRIC_OPERATOR`, else the login name, plus the SSH client address when there is one.

    Examples: `alice`, `alice@10.0.0.7` (from SSH_CLIENT / SSH_CONNECTION).
    """
    env = dict(os.environ) if env is None else env
    name = env.get("ONEIRIC_OPERATOR", "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            name = env.get("USER") or env.get("LOGNAME") or f"uid{os.getuid()}"
    ssh = (env.get("SSH_CLIENT") or env.get("SSH_CONNECTION") or "").split()
    return f"{name}@{ssh[0]}" if ssh else name


def other_process_alive(hostname: str, pid: int) -> bool | None:
    """Whether process `pid` of machine `hostname` (not this process) still runs: True or
    False on this machine, None when it cannot be told from here (another machine)."""
    if hostname != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True
