"""Bounds on outside input: how many bytes a settings file or a manifest may hold, and how
deep its data may nest, checked before the expensive work starts.

Why: a parser's time and memory grow with what it is given (ruamel's round-trip parser took
4 min 45 s and 1.95 GB on a 53 MB settings file, on the host's event loop), and nesting drives
a recursive parser or validator off the end of the stack. So:

* size is checked before a byte is parsed: `read_capped` opens the file, looks at its size
  (fstat on the open descriptor, so the file measured is the file read), then reads at most
  limit + 1 bytes, so a file that grows between the two is caught as well and nothing past the
  limit is ever held in memory. Remote manifests over HTTP are stopped while their body streams
  in (remote/fetch.py);
* depth is checked on the parsed data (`depth_beyond`, iterative) or, for the careful YAML path,
  on the node tree before anything is constructed (settings_careful.py).

A refusal is a `LimitExceeded`: it says which limit was hit, where (a file path or a source
URL), what was found, the limit, and the app.yml key that raises it, in one sentence.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 8 * MiB  # a settings file: ~70,000 candidates, ~1 s on the fast path
DEFAULT_MAX_DEPTH = 64  # the demo nests 4 levels; provider settings rarely more than 10
# The careful YAML path (ruamel, recursive) runs out of Python stack at about 250 levels; a
# configured depth limit stays well below that, so the limit, not the stack, is what refuses.
MAX_DEPTH_CEILING = 200

SETTINGS_BYTES_KEY = "limits.settings_max_bytes"
DEPTH_KEY = "limits.max_depth"


@dataclass(frozen=True)
class InputLimits:
    """The limits one read is held to, with the app.yml keys that set them (for the message)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    bytes_key: str = SETTINGS_BYTES_KEY
    depth_key: str = DEPTH_KEY


DEFAULT_LIMITS = InputLimits()


def size_text(count: int) -> str:
    """`8 MiB (8,388,608 bytes)`, `512 bytes`: the exact count, with a readable unit when large."""
    if count < 1024:
        return f"{count:,} bytes"
    for unit, scale in (("GiB", MiB * 1024), ("MiB", MiB), ("KiB", 1024)):
        if count >= scale:
            value = count / scale
            shown = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{shown} {unit} ({count:,} bytes)"
    return f"{count:,} bytes"  # pragma: no cover - unreachable


class LimitExceeded(Exception):
    """Input over a limit. `limit_name` is "size" or "depth"; `found` is the size in bytes
    (None when the file grew past the limit while it was read) or the depth reached."""

    def __init__(self, limit_name: str, where: str, found: int | None, limit: int, key: str,
                 detail: str = "") -> None:
        self.limit_name = limit_name
        self.where = where
        self.found = found
        self.limit = limit
        self.key = key
        self.detail = detail
        super().__init__(self.sentence())

    def reason(self) -> str:
        """The sentence without the place (for a ConfigProblem, which puts the file in front)."""
        if self.limit_name == "size":
            if self.found is None:
                found = f"grew past {size_text(self.limit)} while it was read"
            else:
                found = f"is {size_text(self.found)}"
            return (f"the file {found}, over the size limit of {size_text(self.limit)}; it was not "
                    f"parsed (raise {self.key} in app.yml to allow larger files)")
        if self.found is None:
            return (f"the data nests too deeply to be parsed at all (hundreds of levels), over the nesting "
                    f"limit of {self.limit} levels ({self.key} in app.yml); it was not used")
        return (f"the data nests at least {self.found} levels deep{self.detail}, over the nesting limit of "
                f"{self.limit} levels; it was not used (raise {self.key} in app.yml to allow deeper nesting)")

    def sentence(self) -> str:
        return f"{self.where}: {self.reason()}"


def read_capped(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes of `path`, refusing (LimitExceeded) a file larger than `limits.max_bytes`
    before reading it. OSError (missing file, a directory, no permission) passes through."""
    limit = limits.max_bytes
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise LimitExceeded("size", str(path), info.st_size, limit, limits.bytes_key)
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the fstat, or is not a regular file (a pipe)
        raise LimitExceeded("size", str(path), None, limit, limits.bytes_key)
    return data


def _label(path: tuple[Any, ...], truncated: bool) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out + ("..." if truncated else "")


_SHOWN = 4  # path components a depth refusal names


def depth_beyond(data: Any, limit: int) -> tuple[int, str] | None:
    """None when `data` (plain dicts and lists) nests at most `limit` containers deep (the
    top-level mapping is level 1); else (limit + 1, where that level is reached, the first
    few keys of the path). Iterative: no recursion whatever the depth, and it stops at the
    first container past the limit."""
    if not isinstance(data, (dict, list)):
        return None
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > limit:
            return depth, _label(path, depth - 1 > len(path))
        items: Iterator[tuple[Any, Any]] = iter(value.items()) if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1, path + (key,) if len(path) < _SHOWN else path))
    return None


def check_depth(data: Any, limits: InputLimits, where: str) -> None:
    """Raise LimitExceeded when `data` nests deeper than `limits.max_depth`."""
    beyond = depth_beyond(data, limits.max_depth)
    if beyond is not None:
        depth, at = beyond
        raise LimitExceeded("depth", where, depth, limits.max_depth, limits.depth_key,
                            f" (at {at})" if at else "")


__all__ = [
    "DEFAULT_LIMITS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "DEPTH_KEY", "InputLimits", "LimitExceeded",
    "MAX_DEPTH_CEILING", "MiB", "SETTINGS_BYTES_KEY", "check_depth", "depth_beyond", "read_capped", "size_text",
]
