"""The swap log's line widget: folding, bounds, following the end, and what it draws."""

from __future__ import annotations

from rich.text import Text
from textual.app import App

from oneiric_core.events import Event, Severity
from oneiric_tui.widgets.event_lines import INDENT, EventLines, fold


def test_fold_breaks_at_spaces_and_indents_continuations():
    plain = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    rows = fold(plain, 20, indent=4)
    pieces = [plain[a:b] for a, b in rows]
    assert "".join(p.replace(" ", "") for p in pieces) == plain.replace(" ", "")
    assert len(pieces[0]) <= 20 and all(len(p) <= 16 for p in pieces[1:])
    assert all(not p.startswith(" ") for p in pieces)  # no leading blanks on a new line
    assert pieces[0] == "alpha beta gamma"


def test_fold_cuts_a_word_longer_than_the_line():
    rows = fold("x" * 50, 20, indent=0)
    assert [b - a for a, b in rows] == [20, 20, 10]


def _event(n: int, message: str | None = None) -> Event:
    event = Event("health-probed", message or f"event number {n}", Severity.INFO)
    event.id = n
    return event


class _LogApp(App):
    def compose(self):
        yield EventLines(lambda e: Text(e.message), 50, id="lines")


async def test_lines_are_bounded_follow_the_end_and_fold_long_events():
    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        lines = app.query_one(EventLines)
        lines.add([_event(n) for n in range(120)])
        await pilot.pause()
        assert len(lines) == 50 and lines.events[0].id == 70  # the oldest went
        assert lines.is_vertical_scroll_end
        shown = [strip.text.rstrip() for strip in lines.render_lines(lines.region.reset_offset)]
        assert shown[-1] == "event number 119"
        lines.add([_event(200, "word " * 20)])
        await pilot.pause()
        text = lines.text_lines()
        assert text[-1].startswith(" " * INDENT) and len(text) > 51
        folded = text[text.index("event number 119") + 1:]
        assert len(folded) >= 3 and " ".join(t.strip() for t in folded).split() == ["word"] * 20
        assert all(len(t) <= lines.scrollable_content_region.width for t in folded)


async def test_a_reader_scrolled_up_stays_on_their_lines():
    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        lines = app.query_one(EventLines)
        lines.add([_event(n) for n in range(50)])
        await pilot.pause()
        lines.scroll_to(y=10, animate=False, immediate=True)
        await pilot.pause()
        first = lines.text_lines()[int(lines.scroll_y)]
        lines.add([_event(n) for n in range(50, 55)])  # five old events fall off the top
        await pilot.pause()
        assert lines.text_lines()[int(lines.scroll_y)] == first
