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

`freeze_long_lived()` is the other half, for objects that stay: a host activating 12,500
keys builds ~30 tracked objects per key (slots, providers, health tracks, snapshots) that
live as long as it does. Each full collection walked all of them again and freed nothing:
pauses of 100-250 ms of the host's loop at 50,000 candidates, growing with the heap. The
host moves them to the permanent generation (gc.freeze) every few hundred activations,
after a young collection (a few ms) has freed the short-lived cycles among them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def freeze_long_lived() -> None:
    """Free the young generations' cycles, then keep the collector from walking what is left
    (everything alive now) in later full collections. O(1) beyond the young collection."""
    gc.collect(1)
    gc.freeze()


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
