"""Incidents: severity with its response target, commander, status, a timeline, a resolution.

Persisted in the state store (tables `incidents` and `incident_timeline`, migration 4), so
every process sees them. The timeline a reader gets merges what was recorded for the incident
(walker steps, answers, actions with who approved them, notes, status changes) with the
journal events of the components involved since the incident opened: one ordered list.
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound, UsageError
from ..events import Event, Severity
from ..identity import other_process_alive
from ..store import INCIDENT_WINDOW_LEAD_S, IncidentRecord
from .escalation import Escalation

STATUSES = ("open", "mitigated", "closed")


# A console walking an incident renews its claim this often; a claim not renewed for
# CLAIM_STALE_S is a walk left (its console closed, crashed or lost its network).
CLAIM_RENEW_S = 5.0
CLAIM_STALE_S = 20.0


@dataclass(frozen=True)
class WalkOwner:
    """The process walking an incident's runbook (the last console that started or resumed
    it), with its claim's heartbeat: on a fleet store the claim is seen from every machine."""

    pid: int
    hostname: str
    actor: str
    at: float  # when the claim was made or last renewed

    def busy_elsewhere(self, now: float | None = None) -> bool:
        """Whether another live process walks it now: on this machine, that process is alive;
        on another machine (which this one cannot look into), its claim was renewed lately."""
        if self.pid == os.getpid() and self.hostname == socket.gethostname():
            return False
        alive = other_process_alive(self.hostname, self.pid)
        if alive is not None:
            return alive
        return (time.time() if now is None else now) - self.at < CLAIM_STALE_S

    def describe(self) -> str:
        return f"{self.actor} (pid {self.pid} on {self.hostname})"


@dataclass
class Incident(IncidentRecord):
    """An incident as the runbooks handle it: the store's record, with how to show and time it."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def elapsed_s(self, now: float | None = None) -> float:
        return ((self.closed_at or now or time.time()) - self.opened_at)


@dataclass
class Entry:
    ts: float
    kind: str  # step | answer | action | note | status | escalation | event
    actor: str | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    source: str = "incident"  # incident | journal

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_FIELDS = ("title", "severity", "status", "commander", "opened_at", "closed_at", "refs", "tree", "summary",
           "impact", "root_cause", "resolution", "follow_ups")


class Incidents:
    """Incident records over an engine's state store; journals incident-* events."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.store = engine.store
        self.escalation = Escalation.from_engine(engine)
        self._saved: dict[int, dict[str, Any]] = {}  # what save_walk last wrote, per incident

    # -- records ---------------------------------------------------------------------------------
    @staticmethod
    def _row(row: IncidentRecord) -> Incident:
        return Incident(**vars(row))

    def get(self, incident_id: int) -> Incident:
        row = self.store.get_incident(int(incident_id))
        if row is None:
            raise NotFound(f"No incident #{incident_id} exists.")
        return self._row(row)

    def list(self, *, status: str | None = None, limit: int = 100) -> builtins.list[Incident]:
        return [self._row(r) for r in self.store.incidents(status=status, limit=limit)]

    @staticmethod
    def _values(inc: Incident) -> dict[str, Any]:
        values = {f: getattr(inc, f) for f in _FIELDS}
        values["refs"] = json.dumps(inc.refs)
        values["follow_ups"] = json.dumps(inc.follow_ups)
        return values

    def _save(self, inc: Incident) -> None:
        self.store.update_incident(inc.id, self._values(inc))

    def _emit(self, kind: str, inc: Incident, message: str, actor: str, **data: Any) -> None:
        self.engine.emit(Event(kind, f"incident #{inc.id} ({inc.severity}) {message}", Severity.INFO, actor=actor,
                               outcome=inc.status, data={"incident": inc.id, **data}))

    def open(self, title: str, severity: str, *, commander: str | None = None, refs: builtins.list[str] | None = None,
             tree: str | None = None, summary: str = "") -> Incident:
        if not title.strip():
            raise UsageError("An incident needs a title.")
        sev = self.escalation.check_severity(severity)
        commander = commander or self.engine.actor
        draft = Incident(0, title.strip(), sev, "open", commander, time.time(), refs=sorted(set(refs or [])),
                         tree=tree, summary=summary)
        inc = self.get(self.store.add_incident(self._values(draft)))
        self.add_entry(inc.id, "status", commander, f"opened ({self.escalation.response_text(sev)}); "
                       f"commander {commander}")
        self._emit("incident-opened", inc, f"opened: {inc.title}", commander, severity=sev)
        return inc

    def add_entry(self, incident_id: int, kind: str, actor: str | None, text: str,
                  data: dict[str, Any] | None = None, ts: float | None = None) -> None:
        self.store.add_incident_entry(int(incident_id), ts or time.time(), kind, actor, text,
                                      json.dumps(data or {}, default=str))

    def note(self, incident_id: int, text: str, *, actor: str | None = None) -> None:
        inc = self.get(incident_id)
        if not text.strip():
            raise UsageError("A note needs some text.")
        actor = actor or self.engine.actor
        self.add_entry(inc.id, "note", actor, text.strip())
        self._emit("incident-updated", inc, f"note by {actor}: {text.strip()}", actor)

    def involve(self, incident_id: int, ref: str) -> None:
        inc = self.get(incident_id)
        if ref not in inc.refs:
            inc.refs = sorted({*inc.refs, ref})
            self._save(inc)

    def update(self, incident_id: int, *, actor: str | None = None, **changes: Any) -> Incident:
        inc = self.get(incident_id)
        allowed = {"summary", "impact", "root_cause", "follow_ups", "severity", "status", "title"}
        bad = sorted(set(changes) - allowed)
        if bad:
            raise UsageError(f"'{bad[0]}' cannot be changed on an incident.")
        if "severity" in changes:
            changes["severity"] = self.escalation.check_severity(changes["severity"])
        if "status" in changes and changes["status"] not in STATUSES:
            raise UsageError(f"'{changes['status']}' is not an incident status; use one of {', '.join(STATUSES)}.")
        if "title" in changes and not str(changes["title"]).strip():
            raise UsageError("An incident needs a title.")
        before = {k: getattr(inc, k) for k in changes}
        changed = {k: v for k, v in changes.items() if before[k] != v}
        if not changed:
            return inc
        for k, v in changed.items():
            setattr(inc, k, v)
        self._save(inc)
        actor = actor or self.engine.actor
        shown = [f"{k} {before[k]} -> {v}" for k, v in changed.items() if k in ("severity", "status", "title")]
        if shown:
            text = "changed " + ", ".join(shown)
            if "severity" in changed:
                text += f" ({self.escalation.response_text(inc.severity)})"
            self.add_entry(inc.id, "status", actor, text)
            self._emit("incident-updated", inc, f"{text} by {actor}", actor, **{k: changed[k] for k in changed
                                                                               if k in ("severity", "status")})
        return inc

    def close(self, incident_id: int, resolution: str, *, actor: str | None = None,
              root_cause: str | None = None, follow_ups: builtins.list[str] | None = None) -> Incident:
        inc = self.get(incident_id)
        if inc.status == "closed":
            raise UsageError(f"Incident #{inc.id} is already closed.")
        if not resolution.strip():
            raise UsageError("Closing an incident needs a resolution.")
        actor = actor or self.engine.actor
        inc.status, inc.closed_at, inc.resolution = "closed", time.time(), resolution.strip()
        if root_cause is not None:
            inc.root_cause = root_cause
        if follow_ups:
            inc.follow_ups = [*inc.follow_ups, *follow_ups]
        self._save(inc)
        self.add_entry(inc.id, "status", actor, f"closed: {inc.resolution}")
        self._emit("incident-closed", inc, f"closed by {actor}: {inc.resolution}", actor)
        return inc

    # -- the walker's steps ------------------------------------------------------------------------
    def recorder(self, incident_id: int) -> Any:
        """A Walker `recorder`: each step goes on the incident's timeline, and the components the
        walk touches join the incident."""
        def record(step: Any, replay: bool = False) -> None:
            kind = {"check": "step", "question": "answer", "action": "action", "escalate": "escalation",
                    "done": "step"}.get(step.kind, "step")
            if step.kind == "question":
                text = f"[{step.tree}] {step.text} -> {step.value}"
            elif step.kind == "action":
                who = f"; approved by {step.approved_by}" if step.approved_by else ""
                text = f"[{step.tree}] action: {step.text} -> {step.value}{who}"
            else:
                text = f"[{step.tree}] {step.text} -> {step.value}"
            self.add_entry(incident_id, kind, step.actor, text, step.to_dict(), ts=step.ts)
            if step.severity and not replay:  # an answer that classifies the incident (`sets: severity`); a
                # step made before the incident was opened was weighed when its severity was chosen
                self.update(incident_id, severity=step.severity, actor=step.actor)
        return record

    def attach_walk(self, incident_id: int, walker: Any, *, resumed: bool = False) -> None:
        """Record the walker's steps on this incident from now on (and, unless the walk was
        `resumed` from this incident's saved walk, the ones it already made)."""
        record = self.recorder(incident_id)
        if not resumed:
            for step in walker.history:
                record(step, replay=True)
        previous = walker.recorder
        params = walker.params

        def both(step: Any) -> None:
            if previous is not None:
                previous(step)
            record(step)
            if params.get("domain") and params.get("key"):
                self.involve(incident_id, f"{params['domain']}/{params['key']}")

        walker.recorder = both
        if params.get("domain") and params.get("key"):
            self.involve(incident_id, f"{params['domain']}/{params['key']}")
        inc = self.get(incident_id)
        if inc.tree is None:
            inc.tree = walker.tree.id
            self._save(inc)

    # -- the walk, saved so another process can resume it ---------------------------------------------
    @staticmethod
    def _walk_key(incident_id: int) -> str:
        return f"incident-walk:{int(incident_id)}"

    def save_walk(self, incident_id: int, walker: Any) -> None:
        """Keep where this incident's walk is (Walker.to_state), replacing what was kept."""
        state = walker.to_state()
        if self._saved.get(incident_id) != state:
            self.store.set_meta(self._walk_key(incident_id), state)
            self._saved[incident_id] = state

    def saved_walk(self, incident_id: int) -> dict[str, Any] | None:
        state = self.store.get_meta(self._walk_key(incident_id))
        return state if isinstance(state, dict) else None

    def resumable(self, limit: int = 20) -> builtins.list[tuple[Incident, dict[str, Any], WalkOwner | None]]:
        """Incidents not closed whose walk was saved and has not finished, newest first, with
        who walked it last."""
        out = []
        for inc in self.list(limit=limit):
            if inc.status == "closed":
                continue
            state = self.saved_walk(inc.id)
            if state is not None and state.get("status") != "finished":
                out.append((inc, state, self.walk_owner(inc.id)))
        return out

    @staticmethod
    def _owner_key(incident_id: int) -> str:
        return f"incident-walker:{int(incident_id)}"

    def claim_walk(self, incident_id: int, actor: str) -> None:
        """Record that this process walks the incident's runbook from now on."""
        self.store.set_meta(self._owner_key(incident_id),
                            {"pid": os.getpid(), "hostname": socket.gethostname(), "actor": actor, "at": time.time()})

    def renew_walk(self, incident_id: int) -> bool:
        """Renew this process's claim on the incident's walk (its console calls this every
        CLAIM_RENEW_S while the walk is shown); False when another process claimed it since."""
        owner = self.walk_owner(incident_id)
        if owner is None or (owner.pid, owner.hostname) != (os.getpid(), socket.gethostname()):
            return False
        self.store.set_meta(self._owner_key(incident_id), {"pid": owner.pid, "hostname": owner.hostname,
                                                           "actor": owner.actor, "at": time.time()})
        return True

    def walk_owner(self, incident_id: int) -> WalkOwner | None:
        data = self.store.get_meta(self._owner_key(incident_id))
        try:
            return WalkOwner(int(data["pid"]), str(data["hostname"]), str(data["actor"]), float(data["at"]))
        except (TypeError, KeyError, ValueError):
            return None

    # -- the timeline ------------------------------------------------------------------------------
    def entries(self, incident_id: int) -> builtins.list[Entry]:
        rows = self.store.incident_entries(int(incident_id))
        return [Entry(r.ts, r.kind, r.actor, r.text, dict(r.data)) for r in rows]

    def lookback_s(self) -> float:
        """How far before its opening an incident's story reaches (app.yml escalation.lookback_min)."""
        return float(getattr(self.escalation.options, "lookback_min", 0.0) or 0.0) * 60

    def timeline(self, incident_id: int, *, limit_events: int = 500) -> builtins.list[Entry]:
        """Recorded entries merged with the journal events of the involved components (and every
        swap decision about them) from `lookback_s()` before opening until closing, oldest
        first; an event from before the opening carries `data["before_open"]`. Journal
        retention keeps every event of an involved component while the incident is open."""
        inc = self.get(incident_id)
        out = self.entries(incident_id)
        until = inc.closed_at or time.time() + 1
        since = inc.opened_at - max(self.lookback_s(), INCIDENT_WINDOW_LEAD_S)
        seen: set[int] = set()
        for ref in inc.refs:
            domain, _, key = ref.partition("/")
            for e in self.engine.journal(domain=domain, key=key, since_ts=since, limit=limit_events):
                if e.id in seen or e.ts > until:
                    continue
                seen.add(e.id or 0)
                data = {"kind": e.kind, "id": e.id, "outcome": e.outcome, "provider": e.provider}
                if e.ts < inc.opened_at - INCIDENT_WINDOW_LEAD_S:
                    data["before_open"] = True
                out.append(Entry(e.ts, "event", e.actor, f"{e.kind}: {e.message}", data, "journal"))
        out.sort(key=lambda entry: entry.ts)
        return out

    def approvals(self, incident_id: int) -> builtins.list[dict[str, Any]]:
        """The actions taken during the incident and who asked for and approved each."""
        out = []
        for entry in self.entries(incident_id):
            if entry.kind != "action":
                continue
            d = entry.data
            out.append({"ts": entry.ts, "action": d.get("text") or entry.text, "outcome": d.get("value"),
                        "requested_by": entry.actor, "approved_by": d.get("approved_by"), "proposal": d.get("proposal"),
                        "evidence": d.get("evidence") or []})
        return out
