"""Who is acting: every journaled change and every approval is attributed to an operator."""

from __future__ import annotations

import getpass
import os


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
