"""Whether a process another record names (a host's lease, an incident's walker) still runs.
(Who is acting is principal.py's.)"""

from __future__ import annotations

import os
import socket


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
