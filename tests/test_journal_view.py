"""oneiric_core.journal_view: which events the swap log shows, which moment `14:02` is, and which
events are news for the operator (issue 15 points 5 and 6)."""

from __future__ import annotations

import time

import pytest

from oneiric_core.events import Event
from oneiric_core.journal_view import clock_time, first_at_or_after, is_change, notice_for


def test_changes_are_shown_and_incident_and_upkeep_events_go_to_their_views() -> None:
    for kind in ("swap-complete", "swap-rollback", "activity-changed", "health-changed", "config-changed"):
        assert is_change(Event(kind, "x"))
    for kind in ("incident-opened", "incident-updated", "incident-closed", "maintenance-done"):
        assert not is_change(Event(kind, "x"))


def _at(day: time.struct_time, hour: int, minute: int) -> float:
    return time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hour, minute, 0, 0, 0, -1))


def test_a_time_of_day_is_today_or_yesterday_when_today_s_is_still_to_come() -> None:
    day = time.localtime()
    now = _at(day, 14, 30)
    assert clock_time("14:02", now) == _at(day, 14, 2)
    assert clock_time("14:02:30", now) == _at(day, 14, 2) + 30
    yesterday = clock_time("23:50", now)
    assert 0 < now - yesterday < 86400 and time.localtime(yesterday).tm_hour == 23


@pytest.mark.parametrize("text", ["25:00", "14", "14:60", "2pm", "14:02:03:04", "-1:30"])
def test_what_is_not_a_time_of_day_is_refused_in_one_sentence(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time of day"):
        clock_time(text, time.time())


def test_the_first_event_at_or_after_a_moment() -> None:
    assert first_at_or_after([10.0, 20.0, 30.0], 15.0) == 1
    assert first_at_or_after([10.0, 20.0, 30.0], 20.0) == 1
    assert first_at_or_after([10.0, 20.0, 30.0], 31.0) is None
    assert first_at_or_after([10.0, 9.5, 30.0], 9.0) == 0  # the journal's order, clocks disagreeing


def _proposal(requested_by_id: str, source: str) -> Event:
    return Event("swap-requested", "#7 adapter/cache: memory -> sqlite", actor="alice",
                 data={"proposal": 7, "requested_by_id": requested_by_id, "source": source})


def test_a_proposal_from_elsewhere_is_news_and_one_s_own_from_a_console_is_not() -> None:
    me = {"principal_id": "os-user:bob", "actor": "bob"}
    assert notice_for(_proposal("os-user:bob", "console"), **me) is None
    for event in (_proposal("os-user:alice", "console"), _proposal("os-user:bob", "cli"),
                  _proposal("internal:watcher", "watcher")):
        notice = notice_for(event, **me)
        assert notice is not None and notice.title == "Proposal #7 from alice" and "-> sqlite" in notice.message


def test_an_incident_opened_by_someone_else_is_news() -> None:
    opened = Event("incident-opened", "incident #3 (P2) opened: redis down", actor="alice", data={"incident": 3})
    assert notice_for(opened, principal_id="os-user:bob", actor="alice") is None
    notice = notice_for(opened, principal_id="os-user:bob", actor="bob")
    assert notice is not None and notice.title == "Incident #3 opened"
    assert notice_for(Event("swap-complete", "x"), principal_id="os-user:bob", actor="bob") is None
