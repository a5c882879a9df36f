"""Incident exports (Markdown) keep outside text inert: a hostile title, note, resolution,
follow-up or operator name renders as its own characters wherever the file is shown, with no
link, image, raw HTML, heading or control character of its own."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from oneiric_core.engine import Engine
from oneiric_core.runbooks.export import handoff, postmortem
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.text import hidden, one_line
from tests.helpers import demo_copy

OPERATOR = "mallory\x1b]0;pwned\x07\x1b[2J[bold red]RED[/]"
TITLE = "cache [down](http://evil) <script>alert(1)</script>"
SUMMARY = "redis gone\n# not a heading\n- not a list\n<img src=x onerror=alert(1)>"
NOTE = "see ![x](http://evil/p.png) *now* | cell \u202efdp.exe"
RESOLUTION = "restarted `rm -rf` &#x202e; [link=http://evil]x[/link]"
FOLLOW_UP = "1. alert on **rollbacks**\nand = heading?"
OUR_H2 = {"Summary", "Impact", "Timeline", "Actions and approvals", "Root cause", "Resolution",
          "Follow-ups", "Notes", "Issue", "Diagnostics done", "Solutions attempted", "Current state",
          "Who to reach", "Assistance needed", "Before it was opened", "What the checks found"}


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)


def visible_text(page: str) -> str:
    """The characters a reader of the rendered page sees."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_postmortem_and_handoff_render_outside_text_as_its_own_characters(tmp_path):
    engine = Engine(demo_copy(tmp_path), state_dir=tmp_path / "state", actor=OPERATOR)
    try:
        incidents = Incidents(engine)
        inc = incidents.open(TITLE, "P1", refs=["adapter/cache"], summary=SUMMARY)
        incidents.note(inc.id, NOTE)
        incidents.close(inc.id, RESOLUTION, root_cause=SUMMARY, follow_ups=[FOLLOW_UP])
        documents = {"post-mortem": postmortem(incidents, inc.id), "hand-off": handoff(incidents, inc.id)}
    finally:
        engine.close()
    for name, markdown in documents.items():
        assert not [c for c in markdown if hidden(c) and c != "\n"], name  # no raw control character
        page = rendered(markdown)
        # Nothing from outside became markup: the only tags are those of our own layout.
        tags = set(re.findall(r"<(\w+)", page))
        assert tags <= {"h1", "h2", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td"}, (name, tags)
        assert page.count("<h1>") == 1, name
        assert set(re.findall(r"<h2>(.*?)</h2>", page)) <= OUR_H2, name
        shown = visible_text(page)
        # Each value reads as its own characters (its control characters as visible escapes).
        for value in (TITLE, OPERATOR):
            assert one_line(value) in shown, (name, value)
    shown = visible_text(rendered(documents["post-mortem"]))
    for value in (NOTE, RESOLUTION, FOLLOW_UP):
        assert one_line(value) in shown, value
    for line in SUMMARY.splitlines():  # a paragraph keeps its lines, each as plain text
        assert line in shown, line
