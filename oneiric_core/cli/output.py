"""Where the CLI's words reach the terminal: every sentence, table and JSON document.

A sentence of the CLI mixes our words with outside text (an operator name, a note, a
provider's error), so each is printed through `say`, which shows control characters as
visible escapes (oneiric_core.text) and never reads markup: an operator named
`x\\e]0;pwned\\a` or a note `[link=http://evil]x[/link]` prints as those very characters.
Rich output goes through `console()`, whose `print` turns every str it is given into plain
Text the same way, so `out.print(f"... {name}")` cannot style or link anything either;
tables (table.py) make their cells plain Text themselves. JSON is data: `json_text`
escapes every non-ASCII and control character (`\\u001b`, `\\u009b`), so `--json` output
never carries a raw ESC or C1 byte either.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any

from ..humanize import age
from ..text import json_document, json_text, multi_line

if TYPE_CHECKING:  # Rich is imported on first use (see _plain_console)
    from rich.console import Console

    from .table import FitTable

# Output read by a program (a pipe, a file) is as wide as its rows: one row per line, no
# word cut to fit the 80 columns Rich assumes when there is no terminal. COLUMNS still wins.
PIPE_WIDTH = 400


def say(message: object = "", *, err: bool = False, flush: bool = False) -> None:
    """Print one sentence (or several lines) of the CLI: outside text in it is shown as is,
    control characters as visible escapes. `err=True` writes to stderr."""
    print(multi_line(message), file=sys.stderr if err else sys.stdout, flush=flush)


def print_json(data: Any) -> None:
    """A `--json` document: indented (a long list one item per line: text.json_document), every
    non-ASCII and control character escaped."""
    sys.stdout.write(json_document(data) + "\n")


def ago(ts: float | None) -> str:
    """"3m ago", or "never" for a time that never came."""
    text = age(ts)
    return "never" if text is None else f"{text} ago"


def new_table(*columns: str) -> FitTable:
    """A FitTable with these column headings (table.py: fits the terminal, cells are plain text)."""
    from .table import table as fit_table

    return fit_table(*columns)


def console() -> Console:
    """A Rich console for the CLI's tables and styled lines; a str printed on it is plain
    text (see the module docstring)."""
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return _plain_console()(highlight=False, soft_wrap=False, width=width)


@functools.cache
def _plain_console() -> type[Console]:
    """The Console class whose `print` shows a str as plain text (made on first use: Rich
    costs tens of milliseconds to import, which the quick CLI paths never pay)."""
    from rich.console import Console

    from ..text import plain

    class PlainConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            kwargs.pop("markup", None)
            super().print(*(plain(o, multiline=True) if isinstance(o, str) else o for o in objects),
                          **kwargs)

    return PlainConsole


__all__ = ["PIPE_WIDTH", "ago", "console", "json_text", "new_table", "print_json", "say"]
