"""Incidents opened on purpose, the incidents view, messages and update reminders (issue 14
points 1 and 7, issue 17 point 1), driven with Pilot over a real engine on the demo. Time moves
through the app's injectable clock, never by sleeping."""

from __future__ import annotations

import time

from oneiric_core.runbooks.board import due_updates
from oneiric_core.runbooks.incidents import Incidents
from oneiric_core.runbooks.loader import load_catalog
from oneiric_core.runbooks.walk_incident import open_for_walk
from oneiric_core.runbooks.walker import Walker
from oneiric_tui.screens.confirm import ConfirmDialog
from oneiric_tui.screens.incident import IncidentScreen
from oneiric_tui.screens.incident_dialogs import CloseIncidentDialog, SeverityDialog
from oneiric_tui.screens.incident_message import MessageScreen
from oneiric_tui.screens.incidents_view import IncidentsScreen
from tests.tui.conftest import ready, until
from tests.tui.test_console import screen_text
from tests.tui.test_incidents_panel import (
    _open_on_cache,
    _open_on_paused_cache,
    _pick,
    answer_severity,
    open_with,
)


class Clock:
    """The console's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def forward(self, minutes: float) -> None:
        self.offset += minutes * 60


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_walking_a_tree_to_its_end_without_acting_opens_no_incident(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await _open_on_cache(pilot)  # healthy: the walk only looks
        await _pick(pilot, screen, "tree:component-not-found")
        walker = screen.walker
        await until(pilot, lambda: not screen.busy and walker.node.kind == "done")
        await _pick(pilot, screen, "ack")
        await until(pilot, lambda: walker.finished)
        assert screen.incident_id is None and Incidents(app.engine).list() == []
        assert "no incident (a look" in screen_text(app)
        assert screen.check_action("note", ()) is None and screen.check_action("close_incident", ()) is None


async def test_refusing_the_severity_neither_opens_an_incident_nor_performs_the_step(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app, screen = await _open_on_paused_cache(pilot)
        await _pick(pilot, screen, "tree:component-not-found")
        walker = screen.walker
        await until(pilot, lambda: walker.node.id == "intentional" and not screen.busy)
        await _pick(pilot, screen, "answer:no - resume it")
        await until(pilot, lambda: walker.node.id == "resume" and not screen.busy)
        await _pick(pilot, screen, "perform")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, SeverityDialog))
        # the tree's default severity (component-not-found: P0) is the one highlighted
        assert app.screen.query_one("#severities").highlighted == 0
        assert "respond within" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.pause(0.2)
        assert Incidents(app.engine).list() == [] and walker.node.id == "resume"
        assert app.engine.activity.get(app.engine.ref("adapter", "cache")).state == "paused"


async def test_incident_response_closes_its_incident_in_the_console(make_app):
    """The workflow's first change (the ticket) opens the incident at the severity its question
    chose; its close step asks the three fields of `oneiric incident close` and closes it."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await _open_on_cache(pilot)
        await _pick(pilot, screen, "tree:incident-response")
        walker = screen.walker
        await _pick(pilot, screen, "answer:P3")
        await until(pilot, lambda: walker.node.id == "ticket" and not screen.busy)
        assert Incidents(app.engine).list() == []
        await _pick(pilot, screen, "perform")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, SeverityDialog))
        assert app.screen.query_one("#severities").highlighted == 3  # what the severity question chose
        await answer_severity(pilot, screen)
        incident = screen.incident_id
        await until(pilot, lambda: walker.node.id == "acknowledge" and not screen.busy)
        await _pick(pilot, screen, "perform")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")  # the incident is open: no second question
        await until(pilot, lambda: walker.node.id == "mitigate" and not screen.busy)
        await _pick(pilot, screen, "answer:mitigation applied")
        await until(pilot, lambda: walker.node.id == "close" and not screen.busy)
        assert "Close the incident: resolution, root cause, follow-ups" in screen_text(app)
        assert "oneiric incident close" not in screen_text(app)  # not sent out of the console
        await _pick(pilot, screen, "perform")
        await until(pilot, lambda: isinstance(app.screen, CloseIncidentDialog))
        await pilot.press(*"swapped back", "enter", *"redis disk full", "enter", *"alert on disk", "enter")
        await until(pilot, lambda: walker.node.id == "done" and not screen.busy)
        inc = Incidents(app.engine).get(incident)
        assert (inc.status, inc.severity, inc.resolution, inc.root_cause, inc.follow_ups) == \
            ("closed", "P3", "swapped back", "redis disk full", ["alert on disk"])
        assert f"#{incident} P3 closed" in screen_text(app)


async def test_the_incidents_view_lists_every_open_one_and_resumes_an_older_one(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        engine = app.engine
        # an older incident, walked earlier (by a console since gone) to its question, 20 minutes ago
        engine.pause("adapter", "cache", note="maintenance", actor="carol")
        incidents = Incidents(engine)
        older_walk = Walker(load_catalog(engine.settings_dir), "component-not-found", engine,
                            params={"domain": "adapter", "key": "cache"}, actor="tester")
        await older_walk.advance()
        older = open_for_walk(incidents, older_walk, "P1", actor="tester").id
        engine.store.update_incident(older, {"opened_at": time.time() - 20 * 60})
        # the latest one, opened in this console on another runbook
        screen = await _open_on_cache(pilot)
        await _pick(pilot, screen, "tree:pause-drain-resume")
        await until(pilot, lambda: screen.walker is not None and not screen.busy)
        await open_with(pilot, screen, "P3")
        latest = screen.incident_id
        latest_node = screen.walker.node.id
        assert latest != older

        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        view = app.screen
        await until(pilot, lambda: len(view.rows) == 2)
        text = screen_text(app)
        assert "2 not closed" in text
        assert f"#{older}" in text and f"#{latest}" in text and "tester" in text
        assert "component-not-found at intentional" in text and f"pause-drain-resume at {latest_node}" in text
        assert "20:0" in text and "/ 15:00 OVER" in text  # P1's 15 minutes to respond, past
        assert [r.incident.id for r in view.rows] == [older, latest]  # the most severe first
        view.query_one("#incidents-table").move_cursor(row=0)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and screen.incident_id == older
                    and not screen.busy)
        assert screen.walker.tree.id == "component-not-found" and screen.walker.node.id == "intentional"
        assert f"#{older} P1 open" in screen_text(app)
        # and back to the latest one, where it was
        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        view.query_one("#incidents-table").move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen and screen.incident_id == latest and not screen.busy)
        assert screen.walker.tree.id == "pause-drain-resume" and screen.walker.node.id == latest_node
        # closing from the view asks the three fields
        await pilot.press("I")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen))
        view.query_one("#incidents-table").move_cursor(row=0)
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, CloseIncidentDialog))
        await pilot.press("enter", "enter", "enter")  # no resolution: refused, nothing closed
        assert isinstance(app.screen, CloseIncidentDialog)
        assert "needs a resolution" in screen_text(app)
        await pilot.press(*"resumed", "enter", "enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, IncidentsScreen) and len(view.rows) == 1)
        assert incidents.get(older).status == "closed" and incidents.get(older).resolution == "resumed"


async def test_a_message_is_copied_with_osc52_and_the_update_reminder_follows_the_clock(make_app):
    clock = Clock()
    app = make_app(clock=clock)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await ready(pilot)
        app.engine.pause("adapter", "cache", note="maintenance", actor="carol")
        screen = await _open_on_cache(pilot)
        await _pick(pilot, screen, "tree:component-not-found")
        await until(pilot, lambda: screen.walker.node.id == "intentional" and not screen.busy)
        await open_with(pilot, screen)  # P0: an update every 15 minutes
        incident = screen.incident_id
        incidents = Incidents(app.engine)
        assert incidents.get(incident).severity == "P0"
        assert due_updates(incidents, commander="tester", now=clock()) == []

        clock.forward(16)
        await until(pilot, lambda: any("status update is due" in m for m in messages(app)))
        assert any(f"Incident #{incident} (P0)" in m and "every 15 min" in m for m in messages(app))
        reminders = [e for e in incidents.entries(incident) if e.kind == "reminder"]
        assert len(reminders) == 1 and "reminded in the console" in reminders[0].text

        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen) and app.screen.message is not None)
        message = app.screen.message
        assert message.kind == "announce"
        assert "adapter/cache" in message.text and "P0" in message.text
        assert "adapter/cache" in screen_text(app)
        await pilot.press("u")
        await until(pilot, lambda: app.screen.message is not None and app.screen.message.kind == "update")
        update = app.screen.message
        await pilot.press("c")
        await until(pilot, lambda: app.clipboard == update.text)
        sent = [e for e in incidents.entries(incident) if e.kind == "message"]
        assert len(sent) == 1 and "copied to the clipboard (OSC 52) by tester" in sent[0].text
        assert sent[0].data["text"] == update.text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await until(pilot, lambda: "update message; copied" in screen.timeline_text)
        # the update was sent: the next one is due 15 minutes after it, not before
        assert due_updates(incidents, commander="tester", now=clock()) == []
        clock.forward(15.5)
        await until(pilot, lambda: len([e for e in incidents.entries(incident) if e.kind == "reminder"]) == 2)


async def test_resolved_message_waits_for_the_incident_to_be_closed(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        screen = await _open_on_cache(pilot)
        await _pick(pilot, screen, "tree:pause-drain-resume")
        await until(pilot, lambda: screen.walker is not None and not screen.busy)
        await open_with(pilot, screen)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen))
        await pilot.press("r")
        await until(pilot, lambda: app.screen.message is None)
        assert "is still open" in screen_text(app)
        await pilot.press("c")  # nothing to copy: nothing recorded
        assert not [e for e in Incidents(app.engine).entries(screen.incident_id) if e.kind == "message"]
