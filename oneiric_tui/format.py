"""How states look on screen: a symbol AND a word for each, so nothing depends on colour.

Only ASCII symbols are used (plus the block characters of sparklines, which every
terminal font has), so the console reads the same over any SSH client and with NO_COLOR.
"""

from __future__ import annotations

from oneiric_core.humanize import age, millis

# symbol, word, style (style is a bonus for colour terminals; the word carries the meaning)
HEALTH = {
    "ok": ("+", "OK", "green"),
    "degraded": ("~", "DEGRADED", "yellow"),
    "failed": ("x", "FAILED", "red bold"),
    "unknown": ("?", "UNKNOWN", "dim"),
}
STATE = {
    "ready": ("", "", ""),
    "inactive": (".", "INACTIVE", "dim"),
    "activating": (">", "SWAPPING", "cyan bold"),
    "failed": ("x", "FAILED", "red bold"),
    "stopping": ("<", "STOPPING", "yellow"),
}
ACTIVITY = {
    "active": ("", "", ""),
    "paused": ("=", "PAUSED", "yellow bold"),
    "draining": ("v", "DRAINING", "yellow"),
    "drained": ("_", "DRAINED", "yellow"),
}
SEVERITY = {
    "info": ("i", "info", ""),
    "warning": ("!", "warn", "yellow"),
    "error": ("x", "ERROR", "red bold"),
}
PROPOSAL = ("?", "PROPOSED", "magenta bold")  # a swap waits for approval on this key
WINNER = ("*", "winner")
SHADOWED = ("-", "shadowed")
MISCONFIGURED = ("!", "MISCONFIGURED", "red bold")

SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(samples: list[float | None], width: int = 20) -> str:
    """The last `width` latencies as block characters, scaled to their own maximum."""
    values = samples[-width:]
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(known) or 1.0
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARK[max(1, min(len(SPARK) - 1, round(v / top * (len(SPARK) - 1))))])
    return "".join(out)


def clip(text: str, width: int) -> str:
    """`text` in at most `width` cells: a longer one ends with an ellipsis ("…", the one
    character beyond ASCII here, as Rich itself cuts), so the columns after it stay aligned."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + "…"


def pad(text: str, width: int) -> str:
    """`text` clipped to `width` cells (`clip`) and padded to exactly `width`."""
    from rich.cells import cell_len

    text = clip(text, width)
    return text + " " * (width - cell_len(text))


def ago(ts: float | None, now: float | None = None) -> str:
    return age(ts, now) or "-"


ms = millis
