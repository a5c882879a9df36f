"""The command palette's console entries, built from the `:` command table (command_line.SPECS).

Why one table: the palette and the command line had separate lists, and the palette missed
half the commands (incidents, approve #N, themes, help). Here every command of SPECS becomes
palette entries: the command alone when it needs no word ("Incidents", "Help: keys"), and one
entry per word its first argument takes now ("Pause adapter/cache", "Approve #7 adapter/cache
memory -> sqlite", "Theme: nord"). Each entry carries the command line it stands for, and the
app runs that line through `MainScreen.run_command`, so an entry does exactly what typing it
after `:` does (its dialogs, its refusals).

At scale the per-key entries are not all searched: at 50,000 components (12,500 keys) they
were 75,000 fuzzy matches per keystroke. Up to SMALL_KEYS keys the palette lists them all as
before; beyond, only the keys a word of the query is part of (`keys_for`, at most KEY_CAP of
them) get their entries, and a hint says when to type more. Global commands are always there.

This module only lists; it runs nothing and holds no rule of what may change (the caller says
which commands it refuses, from the screen's `disabled_reason`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from oneiric_core.text import one_line

from .command_line import SPECS, CommandSpec, Vocabulary

SMALL_KEYS = 200  # up to this many keys the palette searches every key's entries
KEY_CAP = 100  # beyond: at most this many keys' entries per query


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
                    refused: Callable[[str], bool] = lambda name: False,
                    keys: Sequence[str] | None = None, only_keys: bool = False) -> Iterator[PaletteEntry]:
    """Every command of SPECS as palette entries, in the table's order. `anywhere_only`: only
    the commands that need no pane of the main view (another screen is on top). A command
    `refused(name)` says no to (read-only: swap, pause, approve...) is left out: the palette
    lists what can be done here; the key bar and the help say why the rest cannot.
    `keys`: the per-key entries ("Pause adapter/cache") only for these keys (None: every key
    of the vocabulary; () none). `only_keys`: nothing but per-key entries."""
    counts = {"notices": "0", "due": "what is due", **vocabulary.counts}
    for spec in SPECS:
        if (anywhere_only and not spec.anywhere) or refused(spec.name):
            continue
        per_key = bool(spec.args) and spec.args[0] == "key"
        if spec.title and not only_keys:
            yield PaletteEntry(spec.title.format_map(counts), _help(spec), spec.name)
        if spec.each and spec.args and (per_key or not only_keys):
            words = keys if per_key and keys is not None else vocabulary.words(spec.args[0])
            for word in words:
                note = one_line(vocabulary.notes.get(f"{spec.args[0]}:{word}", ""))
                title = spec.each.format(word=one_line(word), note=note).rstrip()
                yield PaletteEntry(title, _help(spec), f"{spec.name} {word}")


def keys_for(query: str, keys: Sequence[str]) -> tuple[list[str], int]:
    """The keys whose entries a query searches at scale, and how many keys matched in all:
    the keys that a word of the query (two characters or more, any case) is part of, the first
    KEY_CAP of them. "pause gen001" -> the keys with "gen001" in them; "pause" -> none (its
    hint says to type part of a key)."""
    words = [w for w in query.lower().split() if len(w) >= 2]
    if not words:
        return [], 0
    found = [k for k in keys if any(w in k.lower() for w in words)]
    return found[:KEY_CAP], len(found)


def key_hint(query: str, shown: int, matched: int, total: int) -> str | None:
    """The line that says why some keys' entries are not listed, or None when all that match are."""
    if matched > shown:
        return f"{matched - shown:,} more keys match '{one_line(query)}': type more of a key's name"
    if matched == 0:
        return f"Pause, swap, probe, explain... one of {total:,} keys: type part of its name"
    return None


__all__ = ["KEY_CAP", "SMALL_KEYS", "PaletteEntry", "key_hint", "keys_for", "palette_entries"]
