"""The session's notifications (`N`): what rang the bell, newest first, with its time.

A toast goes after a few seconds, often while the operator looked at another terminal; a
proposal from the CLI or an incident opened by a colleague must still be findable. The app
keeps every notification of the session (oneiric_core.journal_view decides which events make
one); this screen lists them. Titles and messages are outside text: plain, one line each.
"""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from oneiric_core.journal_view import Notice
from oneiric_core.text import one_line

from ..widgets.key_bar import KeyBar


def notices_table(notices: list[Notice]) -> Table | Text:
    if not notices:
        return Text("No notifications this session. A proposal from elsewhere or an incident opened by "
                    "someone else rings the bell and is listed here.", style="dim")
    table = Table(box=None, expand=True, pad_edge=False)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("what", no_wrap=True, style="bold")
    table.add_column("message", ratio=1)
    for notice in sorted(notices, key=lambda n: n.ts, reverse=True):
        table.add_row(time.strftime("%H:%M:%S", time.localtime(notice.ts)), Text(one_line(notice.title)),
                      Text(one_line(notice.message)))
    return table


class NoticesScreen(Screen):
    DEFAULT_CSS = """
    NoticesScreen #notices-head { height: 1; padding: 0 1; background: $panel; }
    NoticesScreen #notices-box { height: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "leave", "Back", id="notices.leave"),
        Binding("j", "scroll(1)", "Down", show=False, id="notices.down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="notices.up"),
        Binding("question_mark", "help", "Help", show=False, id="notices.help"),
        Binding("q", "app.quit_console", "Quit", show=False, id="notices.quit"),
    ]

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__()
        self.notices = notices

    def compose(self) -> ComposeResult:
        head = Text()
        head.append(" Notifications ", style="bold reverse")
        head.append(f"  {len(self.notices)} this session, newest first")
        yield Static(head, id="notices-head")
        with VerticalScroll(id="notices-box"):
            yield Static(notices_table(self.notices), id="notices-list")
        yield KeyBar()

    def action_scroll(self, step: int) -> None:
        box = self.query_one("#notices-box", VerticalScroll)
        box.scroll_to(y=box.scroll_y + step, animate=False)

    def action_leave(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen, help_sections

        self.app.push_screen(HelpScreen(help_sections(self.app)))


__all__ = ["NoticesScreen", "notices_table"]
