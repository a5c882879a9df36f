"""The command palette's console entries, built from the `:` command table (command_line.SPECS).

Why one table: the palette and the command line had separate lists, and the palette missed
half the commands (incidents, approve #N, themes, help). Here every command of SPECS becomes
palette entries: the command alone when it needs no word ("Incidents", "Help: keys"), and one
entry per word its first argument takes now ("Pause adapter/cache", "Approve #7 adapter/cache
memory -> sqlite", "Theme: nord"). Each entry carries the command line it stands for, and the
app runs that line through `MainScreen.run_command`, so an entry does exactly what typing it
after `:` does (its dialogs, its refusals).

This module only lists; it runs nothing and holds no rule of what may change (the caller says
which commands it refuses, from the screen's `disabled_reason`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from oneiric_core.text import one_line

from .command_line import SPECS, CommandSpec, Vocabulary


@dataclass(frozen=True)
class PaletteEntry:
    """One palette line: what it is called, its help line, and the `:` line it runs."""

    title: str
    help: str
    line: str


def _help(spec: CommandSpec) -> str:
    """The entry's help line: the command's summary, as a sentence, and how to type it."""
    return f"{spec.summary[:1].upper()}{spec.summary[1:]} ({spec.usage})"


def palette_entries(vocabulary: Vocabulary, *, anywhere_only: bool = False,
                    refused: Callable[[str], bool] = lambda name: False) -> Iterator[PaletteEntry]:
    """Every command of SPECS as palette entries, in the table's order. `anywhere_only`: only
    the commands that need no pane of the main view (another screen is on top). A command
    `refused(name)` says no to (read-only: swap, pause, approve...) is left out: the palette
    lists what can be done here; the key bar and the help say why the rest cannot."""
    counts = {"notices": "0", "due": "what is due", **vocabulary.counts}
    for spec in SPECS:
        if (anywhere_only and not spec.anywhere) or refused(spec.name):
            continue
        if spec.title:
            yield PaletteEntry(spec.title.format_map(counts), _help(spec), spec.name)
        if spec.each and spec.args:
            for word in vocabulary.words(spec.args[0]):
                note = one_line(vocabulary.notes.get(f"{spec.args[0]}:{word}", ""))
                title = spec.each.format(word=one_line(word), note=note).rstrip()
                yield PaletteEntry(title, _help(spec), f"{spec.name} {word}")


__all__ = ["PaletteEntry", "palette_entries"]
