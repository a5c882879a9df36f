"""The command palette's per-key entries at scale: a Textual command Provider.

Why its own provider: Textual's system commands provider matches every command it is given on
every keystroke. With 12,500 keys (50,000 components) the console's per-key entries ("Pause
adapter/cache", six per key) were 75,000 fuzzy matches a keystroke, seconds each. Up to
palette.SMALL_KEYS keys the app gives them to the system commands as before and this provider
lists nothing; beyond, the app gives only the global commands there, and this provider
searches the entries of the keys the query names part of (palette.keys_for), yielding its hits
as it goes and giving the loop back every few hundred entries, so that a keystroke typed
meanwhile cancels the search instead of waiting for it. A hint line says when to type more.
"""

from __future__ import annotations

import asyncio

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .main_screen import MainScreen
from .palette import SMALL_KEYS, key_hint, keys_for, palette_entries

YIELD_EVERY = 200  # entries matched between two returns to the event loop


class KeyCommands(Provider):
    """Per-key palette entries for large settings (see the module docstring)."""

    def _main(self) -> MainScreen | None:
        main = getattr(self.app, "main", None)
        if not isinstance(main, MainScreen) or not isinstance(self.screen, MainScreen):
            return None  # another screen is on top: per-key commands need the main view
        if len(getattr(self.app, "statuses", ())) <= SMALL_KEYS:
            return None  # the system commands list them all
        return main

    async def discover(self) -> Hits:
        main = self._main()
        if main is not None:  # the palette just opened: say how to reach a key's commands
            total = len(getattr(self.app, "statuses", ()))
            yield DiscoveryHit(key_hint("", 0, 0, total) or "", _nothing, help="the global commands are listed here")

    async def search(self, query: str) -> Hits:
        main = self._main()
        if main is None:
            return
        vocabulary = main.vocabulary()
        keys, matched = keys_for(query, vocabulary.keys)
        matcher = self.matcher(query)
        for n, entry in enumerate(palette_entries(vocabulary, refused=main.refused, keys=keys, only_keys=True), 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            score = matcher.match(entry.title)
            if score > 0:
                yield Hit(score, matcher.highlight(entry.title), lambda line=entry.line: main.run_command(line),
                          text=entry.title, help=entry.help)
        hint = key_hint(query, len(keys), matched, len(vocabulary.keys))
        if hint is not None:
            yield Hit(0.001, hint, _nothing, text=hint, help="only the keys your search names are listed")


def _nothing() -> None:
    """A hint line's action: nothing (choosing it closes the palette)."""


__all__ = ["KeyCommands"]
