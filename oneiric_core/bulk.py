"""Building many objects at once without the cyclic garbage collector walking them.

Loading 10,000 candidates allocates a few hundred thousand objects (parsed YAML, settings
models, candidates, ranking rows), none of them in a reference cycle. CPython's collector
counts those allocations and, as the heap grows, runs full collections that walk every
object in the process and free nothing: two of them, 50-70 ms together, inside one
Engine() on 10,000 candidates. `gc_paused()` turns the collector off for such a build and
back on after it (only if it was on: a caller that disabled it keeps it disabled); the
next young-generation collection then walks the new objects once. Memory is not at risk:
reference counting still frees everything that is not in a cycle, and cycles made during
the pause are collected after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
