"""Times and durations as operators read them; shared by the CLI and the console."""

from __future__ import annotations

import time


def age(ts: float | None, now: float | None = None) -> str | None:
    """How long ago `ts` was: `12s`, `3m`, `1.5h`, `2.0d`; None when there is no time."""
    if ts is None:
        return None
    secs = max(0.0, (time.time() if now is None else now) - ts)
    if secs < 60:
        return f"{secs:.0f}s"
    if secs < 3600:
        return f"{secs / 60:.0f}m"
    if secs < 86400:
        return f"{secs / 3600:.1f}h"
    return f"{secs / 86400:.1f}d"


def millis(value: float | None) -> str:
    """`0.4 ms`, `12.3 ms`, `1.25 s`; `-` when unknown."""
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"
