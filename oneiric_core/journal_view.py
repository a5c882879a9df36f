"""Which journal events go where, and which ones are news: the rules the console's views follow.

The journal holds every event; the console shows it in more than one place, and each place
answers one question. The swap log pane answers "what changed": swaps, rollbacks, pauses,
selections, health, settings, remote sources. Incident events answer "what are we doing about
it" and belong to the incident views (the panel, `I`, the timelines), maintenance to the upkeep
view; mixed into the swap log they pushed the changes off its few rows. The full journal view
shows everything.

A notification is for what this operator did not do and should know at once: a proposal that
arrived from elsewhere (another operator, the CLI, the settings watcher, a remote source) and
an incident opened by someone else. The operator's own swap from this console, or their own
incident, already said so where they asked for it.

No Textual here (the console is one reader of these rules; a web view or a CLI may be another).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from .events import Event
from .text import one_line

# Kind prefixes of the events that other views show; everything else is a change.
ELSEWHERE = (("incident-", "the incident views"), ("maintenance-", "the upkeep view"))


def is_change(event: Event) -> bool:
    """Whether the swap log pane shows `event`: everything but incident and maintenance events."""
    return not event.kind.startswith(tuple(prefix for prefix, _ in ELSEWHERE))


def clock_time(text: str, now: float) -> float:
    """The moment an operator means by `14:02` (or `14:02:30`): that time today, local time, or
    yesterday when today's is still to come (at 00:10, `23:50` is ten minutes ago). ValueError
    with the sentence to show when `text` is not a time of day."""
    parts = text.strip().split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or not all(p.isdigit() and len(p) <= 2 for p in parts):
        raise ValueError(f"'{one_line(text)}' is not a time of day: type it as HH:MM or HH:MM:SS (14:02).")
    hour, minute, second = (*numbers, 0)[:3]
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
        raise ValueError(f"'{one_line(text)}' is not a time of day: hours 0-23, minutes and seconds 0-59.")
    today = time.localtime(now)
    moment = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, hour, minute, second, 0, 0, -1))
    if moment > now:
        yesterday = time.localtime(now - 86400)
        moment = time.mktime((yesterday.tm_year, yesterday.tm_mon, yesterday.tm_mday, hour, minute, second,
                              0, 0, -1))
    return moment


def first_at_or_after(times: Sequence[float], moment: float) -> int | None:
    """Index of the first of `times` (the journal's order) at or after `moment`; None when every
    one is earlier. A scan, not a bisection: events appended by several processes (a host, the
    CLI) are in the journal's order, and their clocks may disagree by a little."""
    return next((i for i, ts in enumerate(times) if ts >= moment), None)


@dataclass(frozen=True)
class Notice:
    """One notification of the session: when, a short title, and the event's own words."""

    ts: float
    title: str
    message: str
    kind: str
    event_id: int | None = None


def notice_for(event: Event, *, principal_id: str, actor: str, node: str | None = None) -> Notice | None:
    """The notification `event` deserves in a console run by `principal_id` (shown as `actor`),
    or None. A proposal is news unless this operator asked for it from a console (their CLI,
    the watcher and a remote source are elsewhere); an opened incident is news unless this
    operator opened it. `node`: the console's node on a fleet store; another node's news
    says which node it is on."""
    where = f" on {one_line(event.node)}" if node is not None and event.node and event.node != node else ""
    if event.kind == "swap-requested":
        own = (event.data.get("requested_by_id") == principal_id and event.data.get("source") == "console")
        if own:
            return None
        number = event.data.get("proposal")
        title = f"Proposal #{number}" if number is not None else "Proposal"
        return Notice(event.ts, f"{title}{where} from {one_line(event.actor or 'elsewhere')}", event.message,
                      event.kind, event.id)
    if event.kind == "incident-opened":
        if event.actor == actor:
            return None
        return Notice(event.ts, f"Incident #{event.data.get('incident', '?')} opened{where}", event.message,
                      event.kind, event.id)
    return None


__all__ = ["ELSEWHERE", "Notice", "clock_time", "first_at_or_after", "is_change", "notice_for"]
