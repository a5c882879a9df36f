"""The console shows outside text as plain text (§12), driven with Pilot over a real engine.

Hostile strings go in as the operator name, a pause note, a swap reason, a provider's
health message and description (settings), a remote source's failing path (its error),
and an incident note. Every pane that shows them (status bar, tree, explain, health, swap
log, approvals, remote, notifications, the approve dialog, the swap picker, the incident
panel) must draw no control character and show each string as its visible escaped form:
markup verbatim, never styles, hyperlinks or click actions.
"""

from __future__ import annotations

import json
import re

from rich.style import Style
from textual.geometry import Region
from textual.widgets import Input

from oneiric_core.engine import Engine
from oneiric_core.text import hidden, one_line
from oneiric_tui.app import OneiricApp
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.swap_picker import SwapPicker
from oneiric_tui.widgets.approvals import ApprovalsTable
from oneiric_tui.widgets.component_tree import ComponentTree
from tests.helpers import demo_copy
from tests.tui.conftest import until

OPERATOR = "mallory\x1b]0;pwned\x07\x1b[2J[bold red]RED[/]"
NOTE = "[link=http://evil]x[/link] \x9b2J \u202eevil"
REASON = "[bold red]urgent[/] \x1b[31m"
HEALTH = "[@click=app.quit]q[/] \x1b]8;;http://evil\x1b\\"
MISSING = "[b]gone\x1b[2J.json"
INCIDENT_NOTE = "[i]saw[/i] \x07 \x1b[1A"


def hostile_settings(tmp_path):
    """The demo plus adapter/probe, whose provider's health message and description are
    hostile, and a remote source whose (hostile) file does not exist."""
    settings = demo_copy(tmp_path)
    adapters = (settings / "adapters.yml").read_text()
    probe = ("candidates:\n  - key: probe\n    provider: plain\n    factory: tests.fixture_providers:healthy\n"
             f"    settings:\n      name: {json.dumps(HEALTH)}\n"
             f"    metadata:\n      description: {json.dumps(HEALTH)}\n")
    (settings / "adapters.yml").write_text(adapters.replace("candidates:\n", probe, 1))
    app = (settings / "app.yml").read_text()
    app += ("remote:\n  sources:\n    - name: broken\n      uri: " + json.dumps(f"file:manifests/{MISSING}")
            + "\n      signature_required: false\n      interval_s: 3600\n")
    (settings / "app.yml").write_text(app)
    return settings


def strips_text(widget) -> list[tuple[str, list[Style]]]:
    """Each line the widget draws (border and padding included): its characters and the
    styles of its segments."""
    width, height = widget.outer_size
    lines = []
    for strip in widget.render_lines(Region(0, 0, width, height)):
        segments = list(strip)
        lines.append(("".join(s.text for s in segments), [s.style for s in segments if s.style]))
    return lines


def drawn(widget) -> str:
    """What a widget and the widgets inside it draw, lines joined, without borders (box
    drawing and block characters), runs of blanks as one: wrapped text reads on."""
    texts = [text for part in (widget, *widget.walk_children()) if part.outer_size.area
             for text, _ in strips_text(part)]
    return " ".join(re.sub("[\u2500-\u259f]", " ", " ".join(texts)).split())


def assert_plain_screen(app, where: str) -> None:
    """No character drawn anywhere can drive the terminal, and nothing drawn links or clicks."""
    for widget in app.screen.walk_children(with_self=True):
        if not widget.display or not widget.outer_size.area:
            continue
        for text, styles in strips_text(widget):
            bad = {f"U+{ord(c):04X}" for c in text if hidden(c)}
            assert not bad, (where, widget, bad, text)
            for style in styles:
                assert not style.link and "@click" not in (style.meta or {}), (where, widget, text)


def shows(widget, value: str) -> bool:
    return " ".join(one_line(value).split()) in drawn(widget)


async def test_every_pane_shows_outside_text_as_plain_text(tmp_path):
    settings = hostile_settings(tmp_path)
    engine = Engine(settings, state_dir=tmp_path / "state", actor=OPERATOR)
    engine.pause("adapter", "cache", note=NOTE)
    app = OneiricApp(engine)
    async with app.run_test(size=(220, 60), notifications=True) as pilot:
        await until(pilot, lambda: app.mode == "host" and app.statuses
                    and app.statuses[engine.ref("adapter", "probe")].state == "ready")
        proposal, _ = await engine.request_swap("adapter", "storage", "local", source="test", reason=REASON,
                                                actor=OPERATOR)
        await engine.remote.sync_now("broken")
        app.refresh_all()
        main = app.main
        tree = main.query_one(ComponentTree)
        await pilot.press("1")
        tree.select_ref(engine.ref("adapter", "cache"))
        await pilot.pause(0.3)
        assert_plain_screen(app, "main view")
        assert shows(main.query_one("#status-bar"), OPERATOR)
        detail = main.query_one("#detail")
        assert shows(detail, NOTE) and shows(detail, OPERATOR)
        log = " ".join(" ".join(main.query_one("#log-lines").text_lines()).split())  # scrolled or not
        assert all(" ".join(one_line(v).split()) in log for v in (OPERATOR, NOTE, REASON)), log
        approvals = main.query_one(ApprovalsTable)
        for table, values in ((approvals, (REASON, OPERATOR)), (main.query_one("#remote"), (MISSING,))):
            main.maximize(table)  # every column on screen
            await pilot.pause(0.1)
            assert all(shows(table, v) for v in values), drawn(table)
            main.minimize()

        # The probe key: its health message in the explain pane, its description once focused.
        tree.select_ref(engine.ref("adapter", "probe"))
        await pilot.pause(0.3)
        main.current_provider = "plain"
        main.show_detail()
        await pilot.pause(0.1)
        assert_plain_screen(app, "explain probe")
        assert shows(detail, f"{HEALTH} fine") and shows(detail, f"about {HEALTH}")

        # A probe's notification names the health message.
        await pilot.press("h")  # a probe changes nothing: no dialog
        await until(pilot, lambda: any(one_line(HEALTH) in n.message for n in app._notifications))

        def toasts():
            return [w for w in app.screen.walk_children() if type(w).__name__ == "Toast"]

        await until(pilot, lambda: any(shows(t, f"{HEALTH} fine") for t in toasts()))  # once laid out
        assert_plain_screen(app, "notification")

        # The swap picker lists the probe candidate's health message.
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SwapPicker))
        await pilot.pause(0.1)
        assert_plain_screen(app, "swap picker")
        assert shows(app.screen.query_one("#candidates"), f"{HEALTH} fine")
        await pilot.press("escape")

        # The approve dialog names who asked.
        await pilot.press("5")
        approvals.move_cursor(row=0)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause(0.1)
        assert_plain_screen(app, "approve dialog")
        assert shows(app.screen.query_one("#body"), OPERATOR)
        await pilot.press("escape")

        # The incident panel: its commander and a note on the timeline.
        await pilot.press("i")
        await until(pilot, lambda: app.screen.id == "incident" or type(app.screen).__name__ == "IncidentScreen")
        incident = app.screen
        await pilot.press("enter")  # the first runbook: a look
        await until(pilot, lambda: incident.walker is not None and not incident.busy)
        await pilot.press("o")  # opens an incident commanded by the operator, at its preselected severity
        await until(pilot, lambda: bool(app.screen.query("#severities")))
        await pilot.press("enter")
        await until(pilot, lambda: incident.incident_id is not None and app.screen is incident)
        await pilot.press("n")
        await until(pilot, lambda: bool(app.screen.query("#prompt-input")))
        app.screen.query_one("#prompt-input", Input).value = INCIDENT_NOTE
        await pilot.press("enter")
        await until(pilot, lambda: one_line(INCIDENT_NOTE) in drawn(incident.query_one("#inc-timeline")))
        assert_plain_screen(app, "incident panel")
        assert shows(incident.query_one("#inc-head"), OPERATOR)
        assert shows(incident.query_one("#inc-timeline"), INCIDENT_NOTE)
        assert proposal.reason == REASON  # the data itself is kept as it came


async def test_notifications_are_plain_text_whatever_the_caller_asks(make_app):
    """Outside text passed without markup shows verbatim; a message written in markup (ours,
    or Textual's own "Press [b]ctrl+q[/b] to quit") shows its words, never styles or actions."""
    app = make_app(autostart=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.notify(f"paused by {OPERATOR}", title=f"note {NOTE}", markup=False)
        app.main.notify("Press [b]ctrl+q[/b] to quit [@click=app.quit]now[/]")
        await pilot.pause(0.2)
        shown = [(n.title, n.message, n.markup) for n in app._notifications]
        assert shown == [(one_line(f"note {NOTE}"), f"paused by {one_line(OPERATOR)}", False),
                         ("", "Press ctrl+q to quit now", False)]
        await until(pilot, lambda: "Press ctrl+q to quit now" in drawn(app.screen))
        assert_plain_screen(app, "toasts")


def test_the_line_filter_drops_control_characters_that_take_no_cell():
    """The last line of defence: a raw ESC or bidi override in a drawn line never reaches the
    terminal, and the line keeps its width."""
    from rich.segment import Segment
    from textual.color import Color
    from textual.strip import Strip

    from oneiric_tui.control_filter import HiddenCharacterFilter

    line = [Segment("ok "), Segment("a\x1b]0;t\x07b\x9b\u202ec"), Segment("\x1b"), Segment(" Ж\u00a0日")]
    out = HiddenCharacterFilter().apply(line, Color(0, 0, 0))
    assert [s.text for s in out] == ["ok ", "a]0;tbc", " Ж\u00a0日"]  # the sequence is inert text now
    assert Strip(out).cell_length == Strip(line).cell_length
    printable = [Segment("plain "), Segment("text")]
    assert HiddenCharacterFilter().apply(printable, Color(0, 0, 0)) is printable
