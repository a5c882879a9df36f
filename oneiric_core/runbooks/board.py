"""The open incidents at a glance, and when their commanders owe the next status update.

`board()` is what the console's incidents view lists: every incident not closed, with its
severity, its age against the severity's response target, its commander, and where its walk
stands (the runbook and node its saved walk is at, finished, waiting for an approval, walked
now by another console, or no walk at all: opened with `oneiric incident open`).

`due_updates()` is the update reminder: an incident's next status update is due at the
severity's cadence after the last message prepared (messages.next_update_at); while none is
prepared, it is due again every cadence. Each reminder given is recorded on the timeline
(kind `reminder`, with the due time it is for), so a console restarted, or a second console
of the same commander, does not remind twice for the same due time. Time is passed in, never
read here: the console's clock is injectable, and its tests move it instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .incidents import Incident, Incidents, WalkOwner
from .messages import next_update_at, update_every_s


@dataclass(frozen=True)
class BoardRow:
    incident: Incident
    age_s: float
    response_s: float | None  # the severity's response target in force, seconds
    walk: dict[str, Any] | None  # the saved walk (Walker.to_state), if any
    owner: WalkOwner | None
    next_update_at: float

    @property
    def over_target(self) -> bool:
        return self.response_s is not None and self.age_s > self.response_s

    @property
    def resumable(self) -> bool:
        return self.walk is not None

    @property
    def busy_elsewhere(self) -> bool:
        return self.owner is not None and self.owner.busy_elsewhere()

    def where(self) -> str:
        """Where the walk stands, in words."""
        walk = self.walk
        if walk is None:
            return "no walk (opened outside a walk)"
        status = walk.get("status")
        text = f"{walk.get('tree')} at {walk.get('node')}"
        if status == "finished":
            text = f"{walk.get('tree')}: walk finished"
        elif status == "waiting":
            text += ", waiting for an approval"
        if self.busy_elsewhere and self.owner is not None:
            text += f" (walked now by {self.owner.describe()})"
        return text


def board(incidents: Incidents, *, now: float, limit: int = 200) -> list[BoardRow]:
    """Every incident not closed, the most severe first, then the oldest."""
    rows = []
    for inc in incidents.list(limit=limit):
        if inc.status == "closed":
            continue
        target = incidents.escalation.response_min(inc.severity)
        rows.append(BoardRow(inc, inc.elapsed_s(now), None if target is None else target * 60,
                             incidents.saved_walk(inc.id), incidents.walk_owner(inc.id),
                             next_update_at(incidents, inc, now)))
    rows.sort(key=lambda r: (r.incident.severity, r.incident.opened_at))
    return rows


@dataclass(frozen=True)
class DueUpdate:
    incident: Incident
    due_at: float  # the due time this reminder is for
    every_s: float

    def sentence(self) -> str:
        minutes = self.every_s / 60
        return (f"Incident #{self.incident.id} ({self.incident.severity}): the next status update is due "
                f"(every {minutes:g} min for {self.incident.severity}).")


def _reminded(incidents: Incidents, incident_id: int) -> set[float]:
    return {float(e.data.get("due", 0.0)) for e in incidents.entries(incident_id) if e.kind == "reminder"}


def due_updates(incidents: Incidents, *, commander: str, now: float) -> list[DueUpdate]:
    """The open incidents `commander` commands whose status update is due at `now` and who has
    not been reminded of that due time yet."""
    out = []
    for inc in incidents.list(limit=200):
        if inc.status != "open" or inc.commander != commander:
            continue
        every = update_every_s(incidents, inc.severity)
        first = next_update_at(incidents, inc, now)
        if now < first:
            continue
        due = first + every * int((now - first) // every)  # overdue: due again every cadence
        if due not in _reminded(incidents, inc.id):
            out.append(DueUpdate(inc, due, every))
    return out


def record_reminder(incidents: Incidents, due: DueUpdate, *, actor: str, now: float) -> None:
    """The reminder, on the timeline: who was reminded, and of which due time."""
    incidents.add_entry(due.incident.id, "reminder", actor,
                        f"status update due (every {due.every_s / 60:g} min); {actor} reminded in the console",
                        {"due": due.due_at}, ts=now)


__all__ = ["BoardRow", "DueUpdate", "board", "due_updates", "record_reminder"]
