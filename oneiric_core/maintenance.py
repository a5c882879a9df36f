"""The maintenance calendar: routine tasks with their cadence, what is due, what was done and
when, and declared maintenance windows.

The tasks are data (`maintenance.yml` in the settings directory, else the package's default:
the runbook index's weekly, monthly, quarterly and annual tasks), each linked to the procedure
runbook that walks it where one exists. Marking a task done records who did it and when in the
state store (meta MAINTENANCE_META; the journal's retention would otherwise forget a yearly
task within a month) and journals `maintenance-done`; its next due date moves on from then.
A window (start, end, the keys it affects, a note) is declared the same way; the pause/drain
procedures read it (the `maintenance.window` fact) and the notices before and after it
(`maintenance_pre`, `maintenance_post`) are filled from it.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, NotFound, UsageError
from .events import Event

FILE = "maintenance.yml"
MAINTENANCE_META = "maintenance_done"  # {task id: {at, by, note}}
WINDOWS_META = "maintenance_windows"  # [{id, start, end, keys, note, by, declared_at, cancelled}]
DAY = 86400.0
CADENCES = {"weekly": 7 * DAY, "monthly": 30 * DAY, "quarterly": 91 * DAY, "annually": 365 * DAY}
SOON_S = 3 * DAY  # a task due within this is "due soon"


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    every: str  # weekly | monthly | quarterly | annually | Nd (days)
    runbook: str | None = None
    notes: str = ""

    @property
    def period_s(self) -> float:
        return period_of(self.every)


def period_of(every: str) -> float:
    if every in CADENCES:
        return CADENCES[every]
    if every.endswith("d") and every[:-1].isdigit() and int(every[:-1]) > 0:
        return int(every[:-1]) * DAY
    raise ValueError(f"'{every}' is not a cadence: use weekly, monthly, quarterly, annually or a number of days "
                     "such as 14d")


@dataclass(frozen=True)
class TaskState:
    task: Task
    last_done_at: float | None
    last_done_by: str | None
    last_note: str | None
    due_at: float  # when it is due next (now, when it was never done)

    def status(self, now: float) -> str:
        """overdue | due | soon | ok"""
        if self.last_done_at is None:
            return "due"
        if now >= self.due_at + DAY:
            return "overdue"
        if now >= self.due_at:
            return "due"
        return "soon" if self.due_at - now <= SOON_S else "ok"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"id": self.task.id, "title": self.task.title, "every": self.task.every, "runbook": self.task.runbook,
                "status": self.status(now), "due_at": self.due_at, "last_done_at": self.last_done_at,
                "last_done_by": self.last_done_by, "last_note": self.last_note}


@dataclass
class Window:
    id: int
    start: float
    end: float
    keys: list[str] = field(default_factory=list)  # "domain/key" the window affects
    note: str = ""
    by: str = ""
    declared_at: float = 0.0
    cancelled: bool = False

    def state(self, now: float) -> str:
        """upcoming | open | past | cancelled"""
        if self.cancelled:
            return "cancelled"
        return "upcoming" if now < self.start else ("open" if now < self.end else "past")

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        out = {"id": self.id, "start": self.start, "end": self.end, "keys": list(self.keys), "note": self.note,
               "by": self.by, "declared_at": self.declared_at, "cancelled": self.cancelled}
        if now is not None:
            out["state"] = self.state(now)
        return out


def load_tasks(settings_dir: Path) -> tuple[list[Task], Path]:
    """The tasks of `settings_dir`/maintenance.yml, else the package's default; ConfigError
    names the file and the task that is wrong."""
    from .package_data import load_yaml, settings_or_default

    path = settings_or_default(settings_dir, FILE)
    data = load_yaml(path, "the maintenance tasks") or {}
    raw = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected `tasks:` with a list of tasks.")
    tasks, seen = [], set()
    for index, item in enumerate(raw):
        where = f"{path}: task #{index}"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("title"):
            raise ConfigError(f"{where} needs an id and a title.")
        if item["id"] in seen:
            raise ConfigError(f"{where}: the id '{item['id']}' is used twice.")
        seen.add(item["id"])
        every = str(item.get("every") or "")
        try:
            period_of(every)
        except ValueError as exc:
            raise ConfigError(f"{where} ({item['id']}): {exc}.") from None
        tasks.append(Task(item["id"], str(item["title"]), every, item.get("runbook") or None,
                          str(item.get("notes") or "")))
    return tasks, path


class Calendar:
    """The tasks of a settings directory against what the store recorded as done."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tasks, self.file = load_tasks(Path(engine.settings_dir))

    def _done(self) -> dict[str, Any]:
        recorded = self.engine.store.get_meta(MAINTENANCE_META)
        return recorded if isinstance(recorded, dict) else {}

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise NotFound(f"No maintenance task '{task_id}' in {self.file} (tasks: "
                       f"{', '.join(t.id for t in self.tasks)}).")

    def states(self, now: float | None = None) -> list[TaskState]:
        now = time.time() if now is None else now
        done = self._done()
        out = []
        for task in self.tasks:
            last = done.get(task.id) if isinstance(done.get(task.id), dict) else None
            at = float(last["at"]) if last and last.get("at") else None
            out.append(TaskState(task, at, last.get("by") if last else None, last.get("note") if last else None,
                                 now if at is None else at + task.period_s))
        return out

    def due(self, now: float | None = None) -> list[TaskState]:
        now = time.time() if now is None else now
        return [s for s in self.states(now) if s.status(now) in ("overdue", "due")]

    def mark_done(self, task_id: str, *, actor: str, note: str = "", at: float | None = None) -> TaskState:
        if self.engine.read_only:
            from .errors import ReadOnlyError

            raise ReadOnlyError("Read-only: marking a maintenance task done is refused.")
        task = self.task(task_id)
        now = time.time() if at is None else at
        done = self._done()
        done[task.id] = {"at": now, "by": actor, "note": note}
        self.engine.store.set_meta(MAINTENANCE_META, done)
        next_due = now + task.period_s
        self.engine.emit(Event("maintenance-done", f"maintenance task {task.id} ({task.title}) done by {actor}"
                               + (f": {note}" if note else "") + f"; next due {when(next_due)}", actor=actor,
                               data={"task": task.id, "note": note, "next_due_at": next_due}))
        return next(s for s in self.states(now) if s.task.id == task.id)

    def history(self, limit: int = 100) -> list[Event]:
        return self.engine.journal(kinds=["maintenance-done", "maintenance-window-declared",
                                          "maintenance-window-cancelled"], limit=limit)

    # -- windows -------------------------------------------------------------------------------

    def windows(self) -> list[Window]:
        raw = self.engine.store.get_meta(WINDOWS_META)
        out = []
        for item in raw if isinstance(raw, list) else []:
            try:
                out.append(Window(int(item["id"]), float(item["start"]), float(item["end"]),
                                  list(item.get("keys") or []),
                                  str(item.get("note") or ""), str(item.get("by") or ""),
                                  float(item.get("declared_at") or 0), bool(item.get("cancelled"))))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def declare(self, start: float, end: float, keys: list[str], *, actor: str, note: str = "") -> Window:
        if self.engine.read_only:
            from .errors import ReadOnlyError

            raise ReadOnlyError("Read-only: declaring a maintenance window is refused.")
        if end <= start:
            raise UsageError(f"The window ends ({when(end)}) before it starts ({when(start)}).")
        for ref in keys:
            domain, sep, key = ref.partition("/")
            if not sep or not key:
                raise UsageError(f"'{ref}' is not a component: write DOMAIN/KEY, e.g. adapter/cache.")
            self.engine.known(domain, key)  # NotFound names an unknown one
        windows = self.windows()
        window = Window(max((w.id for w in windows), default=0) + 1, start, end, keys, note, actor, time.time())
        self.engine.store.set_meta(WINDOWS_META, [w.to_dict() for w in [*windows, window]])
        self.engine.emit(Event("maintenance-window-declared", f"maintenance window #{window.id} declared by {actor}: "
                               f"{when(start)} to {when(end)}" + (f" for {', '.join(keys)}" if keys else "")
                               + (f" ({note})" if note else ""), actor=actor, data=window.to_dict()))
        return window

    def cancel(self, window_id: int, *, actor: str) -> Window:
        windows = self.windows()
        found = next((w for w in windows if w.id == window_id), None)
        if found is None:
            raise NotFound(f"No maintenance window #{window_id}.")
        found.cancelled = True
        self.engine.store.set_meta(WINDOWS_META, [w.to_dict() for w in windows])
        self.engine.emit(Event("maintenance-window-cancelled", f"maintenance window #{window_id} cancelled by {actor}",
                               actor=actor, data={"id": window_id}))
        return found

    def window(self, window_id: int | None = None, now: float | None = None) -> Window | None:
        """Window `window_id`, else the open one, else the next upcoming one."""
        now = time.time() if now is None else now
        windows = [w for w in self.windows() if not w.cancelled]
        if window_id is not None:
            return next((w for w in self.windows() if w.id == window_id), None)
        open_now = [w for w in windows if w.state(now) == "open"]
        upcoming = sorted((w for w in windows if w.state(now) == "upcoming"), key=lambda w: w.start)
        chosen = open_now or upcoming
        return chosen[0] if chosen else None


def notice(window: Window, kind: str, *, contacts: str = "") -> str:
    """The maintenance_pre or maintenance_post notice of `window`, ready to paste."""
    keys = ", ".join(window.keys) or "no single component (the whole host)"
    span = f"{when(window.start)} to {when(window.end)}"
    if kind == "pre":
        return "\n".join([
            f"[Maintenance] Scheduled maintenance window #{window.id}: {span}.",
            f"Affected: {keys}.",
            f"What: {window.note or 'routine maintenance'}.",
            "Expect: affected components paused or drained for the window; everything else keeps serving.",
            f"Contact: {contacts or window.by or 'the on-call engineer'}.",
            "Checklist: post in #engineering 72 h ahead, email stakeholders 72 h ahead, status page 24 h ahead, "
            "on-call confirmed, stakeholders acknowledged.",
        ])
    if kind == "post":
        return "\n".join([
            f"[Maintenance] Maintenance window #{window.id} ({span}) is complete.",
            f"Affected: {keys}; all resumed and serving.",
            "Status page: operational. Ticket: closed.",
            f"Notes: {window.note or 'none'}.",
        ])
    raise UsageError(f"'{kind}' is not a notice: use pre or post.")


def when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def parse_time(text: str) -> float:
    """A local ISO time ("2026-12-05 02:00", "2026-12-05T02:00") or "+2h"/"+30m"/"+1d"
    from now; UsageError in one sentence otherwise."""
    text = text.strip()
    if text.startswith("+") and text[1:-1].isdigit() and text[-1] in "mhd":
        return time.time() + int(text[1:-1]) * {"m": 60, "h": 3600, "d": DAY}[text[-1]]
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"'{text}' is not a time: write 2026-12-05 02:00 (local time) or +2h.") from None
