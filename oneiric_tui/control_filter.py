"""The console's last line of defence: no control character reaches the terminal.

Every pane shows outside text through oneiric_core.text, which turns control characters into
visible escapes before Rich or Textual lays anything out (§12). This filter runs on every
line the console draws, after layout, and drops any such character that still got through
(a widget of Textual's own showing what it was handed, a call site a future change forgets):
a raw ESC in a line would let a name retitle the window, move the cursor or wipe the screen.
It can only drop, not show: the line is laid out already, and these characters take no cell.
Lines of printable text (nearly all of them) cost one `str.isprintable` per segment.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from oneiric_core.text import hidden


def _drop_hidden(text: str) -> str:
    return "".join(char for char in text if not (hidden(char) and cell_len(char) == 0))


class HiddenCharacterFilter(LineFilter):
    """Drops HIDDEN characters (oneiric_core.text) that take no cell from drawn lines."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if all(segment.text.isprintable() for segment in segments):
            return segments
        out = []
        for segment in segments:
            if segment.control or segment.text.isprintable():
                out.append(segment)
            elif text := _drop_hidden(segment.text):
                out.append(Segment(text, segment.style))
        return out


__all__ = ["HiddenCharacterFilter"]
