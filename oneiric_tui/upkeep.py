"""What the console reads for its upkeep view: the maintenance calendar's tasks as the core
states them, and the upstream Oneiric settings nothing here reads.

Both come from the core (oneiric_core.maintenance.Calendar, oneiric_core.upstream_settings.
notices), the same calls `oneiric maintenance` and `oneiric status` make; this only takes one
reading at one moment, so the header's count, the upkeep screen and the palette agree. The
reading loads maintenance.yml, so the app takes it in a thread (app.refresh_upkeep), after the
first frame and then every UPKEEP_EVERY_S seconds, when the journal says a task was done or a
setting changed, and after a task is marked done here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneiric_core.errors import OneiricError

if TYPE_CHECKING:
    from oneiric_core.maintenance import TaskState

UPKEEP_EVERY_S = 30.0  # time alone makes a task due: read again this often
LATE = ("overdue", "due")  # the statuses the header counts
ORDER = {"overdue": 0, "due": 1, "soon": 2, "ok": 3}


@dataclass(frozen=True)
class Upkeep:
    """One reading: the tasks (most urgent first), where they come from, and the sentences
    for each upstream settings file or variable in sight."""

    at: float
    tasks: list[TaskState] = field(default_factory=list)
    file: Path | None = None
    not_read: list[str] = field(default_factory=list)
    error: str | None = None  # why the maintenance tasks could not be read

    def status(self, state: TaskState) -> str:
        return state.status(self.at)

    @property
    def late(self) -> list[TaskState]:
        return [s for s in self.tasks if self.status(s) in LATE]

    @property
    def overdue(self) -> int:
        return sum(1 for s in self.tasks if self.status(s) == "overdue")


def read_upkeep(engine: Any, now: float | None = None) -> Upkeep:
    """The calendar and the upstream notices of `engine`'s settings directory now; a
    maintenance file that does not load is said in `error`, never raised."""
    from oneiric_core.maintenance import Calendar  # here, in the reading thread: not on the first frame's path
    from oneiric_core.upstream_settings import notices

    now = time.time() if now is None else now
    not_read = notices(Path(engine.settings_dir))
    try:
        calendar = Calendar(engine)
        states = calendar.states(now)
    except OneiricError as exc:
        return Upkeep(now, not_read=not_read, error=str(exc))
    states.sort(key=lambda s: (ORDER.get(s.status(now), 9), s.due_at, s.task.id))
    return Upkeep(now, states, calendar.file, not_read)
