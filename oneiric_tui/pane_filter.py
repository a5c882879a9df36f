"""`/` in a list pane: the rule a row is kept by, and the box the words are typed in.

Why one rule for every pane: an operator who filters the tree, the health table, the
approvals and the remote sources should not learn four syntaxes. A row is kept when every
word typed is found, case-insensitive, in the row's visible text (its cells, joined); no
words keeps every row. The swap log keeps its richer filter (`kind:`, `sev:`), whose plain
words follow the same rule.

`PaneFilterBox` is the one-line box at the foot of the main view, opened by `/` for the
focused pane and scoped to it: `enter` applies the words (the pane's border says
"filter: ..."), `esc` clears them. The panes do the hiding (`apply_filter`); nothing here
knows what a row means.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from rich.text import Text
from textual.content import Content
from textual.widgets import Input

from oneiric_core.text import one_line, plain


def normalized(query: str) -> str:
    """The words of `query`, single-spaced: what the pane's border shows."""
    return " ".join(query.split())


def row_matches(query: str, texts: Iterable[str]) -> bool:
    """Whether a row whose visible text is `texts` is kept by `query`: every word of it is
    found, ignoring case, somewhere in the text."""
    words = query.lower().split()
    if not words:
        return True
    haystack = " ".join(texts).lower()
    return all(word in haystack for word in words)


def cell_text(value: Any) -> str:
    """A cell's characters as shown: a Rich Text or a Content by its plain text."""
    if isinstance(value, Text | Content):
        return value.plain
    return one_line(value) if isinstance(value, str) else str(value)


def filter_subtitle(query: str) -> Text | str:
    """The pane's border subtitle while filtered (plain: the words are the operator's)."""
    return plain(f"filter: {query}") if query else ""


@runtime_checkable
class Filterable(Protocol):
    """A pane whose rows `/` narrows."""

    filter_text: str

    def apply_filter(self, text: str) -> None: ...


class PaneFilterBox(Input):
    """The `/` box for one pane (`target`, its id): its words, shown greyed, say what it filters."""

    def __init__(self, target: str, pane_title: str, current: str, **kwargs: Any) -> None:
        super().__init__(value=current, placeholder=f"filter {pane_title}: words found in a row "
                         "(enter applies, esc clears)", **kwargs)
        self.target = target


__all__ = ["Filterable", "PaneFilterBox", "cell_text", "filter_subtitle", "normalized", "row_matches"]
