"""Where the CLI's words reach the terminal: every sentence, table and JSON document.

A sentence of the CLI mixes our words with outside text (an operator name, a note, a
provider's error), so each is printed through `say`, which shows control characters as
visible escapes (oneiric_core.text) and never reads markup: an operator named
`x\\e]0;pwned\\a` or a note `[link=http://evil]x[/link]` prints as those very characters.
Rich output goes through `console()`, whose `print` turns every str it is given into plain
Text the same way, so `out.print(f"... {name}")` cannot style or link anything either;
tables (cli_table) make their cells plain Text themselves. JSON is data: `json_text`
escapes every non-ASCII and control character (`\\u001b`, `\\u009b`), so `--json` output
never carries a raw ESC or C1 byte either.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any

from .text import multi_line

# Output read by a program (a pipe, a file) is as wide as its rows: one row per line, no
# word cut to fit the 80 columns Rich assumes when there is no terminal. COLUMNS still wins.
PIPE_WIDTH = 400


def say(message: object = "", *, err: bool = False, flush: bool = False) -> None:
    """Print one sentence (or several lines) of the CLI: outside text in it is shown as is,
    control characters as visible escapes. `err=True` writes to stderr."""
    print(multi_line(message), file=sys.stderr if err else sys.stdout, flush=flush)


def json_text(data: Any, **options: Any) -> str:
    """`data` as JSON with every non-ASCII character escaped (`ensure_ascii`): a raw ESC, C1
    or bidi character can never reach the reader's terminal, and the value is unchanged."""
    return json.dumps(data, ensure_ascii=True, default=str, **options)


def console():
    """A Rich console for the CLI's tables and styled lines; a str printed on it is plain
    text (see the module docstring)."""
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return _plain_console()(highlight=False, soft_wrap=False, width=width)


@functools.cache
def _plain_console() -> type:
    """The Console class whose `print` shows a str as plain text (made on first use: Rich
    costs tens of milliseconds to import, which the quick CLI paths never pay)."""
    from rich.console import Console

    from .text import plain

    class PlainConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
            kwargs.pop("markup", None)
            super().print(*(plain(o, multiline=True) if isinstance(o, str) else o for o in objects),
                          **kwargs)

    return PlainConsole


__all__ = ["PIPE_WIDTH", "console", "json_text", "say"]
