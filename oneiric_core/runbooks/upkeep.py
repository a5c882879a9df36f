"""Runbooks kept alive: the follow-ups that name a runbook, the tree file's change history,
and the last result of its drills.

* **Follow-ups.** A post-mortem follow-up that names a runbook ("update hot-swap-failed with
  the redis case", or `runbook:hot-swap-failed ...`) stays open against that runbook until the
  tree's `reviewed` date moves past the day the incident closed: editing the tree and bumping
  `reviewed` is what closes it. `runbook list`, `runbook show` and the console flag it.
* **History.** Where the settings directory is a git repository, a tree file's commits
  (`git log` of that file), newest first.
* **Drills.** `oneiric runbook drill` records each drill's outcome in the state store
  (meta DRILLS_META), so `runbook show` says when each last passed or failed.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRILLS_META = "runbook_drills"  # {tree id: {drill id: {passed, at, reached, expected}}}
HISTORY_LIMIT = 10


@dataclass(frozen=True)
class FollowUp:
    incident: int
    title: str
    closed_at: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "title": self.title, "closed_at": self.closed_at, "text": self.text}


def names(text: str, tree_id: str) -> bool:
    """Whether a follow-up names the runbook `tree_id`: as `runbook:ID` or as the id itself,
    a whole word."""
    return bool(re.search(rf"(?<![\w-])(?:runbook:)?{re.escape(tree_id)}(?![\w-])", text))


def open_follow_ups(engine: Any, catalog: Any) -> dict[str, list[FollowUp]]:
    """Per tree id, the follow-ups of closed incidents that name it, closed after the tree's
    last review (a review on the day the incident closed or later closes them)."""
    from .incidents import Incidents

    out: dict[str, list[FollowUp]] = {}
    closed = [i for i in Incidents(engine).list(status="closed", limit=500) if i.follow_ups and i.closed_at]
    for tree in catalog.trees.values():
        for inc in closed:
            if inc.closed_at is None:
                continue
            if tree.reviewed >= datetime.date.fromtimestamp(inc.closed_at):
                continue  # reviewed on or after the day the incident closed: its follow-ups are done
            for text in inc.follow_ups:
                if names(text, tree.id):
                    out.setdefault(tree.id, []).append(FollowUp(inc.id, inc.title, inc.closed_at, text))
    return out


def history(path: Path, limit: int = HISTORY_LIMIT) -> list[str] | None:
    """The file's commits, newest first ("2026-11-30 3f2a1b9 alice: add the redis case"); None
    when it is not in a git repository (or git is not installed)."""
    try:
        proc = subprocess.run(["git", "-C", str(path.parent), "log", f"-{limit}", "--date=short",
                               "--format=%ad %h %an: %s", "--", path.name], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return [line for line in proc.stdout.splitlines() if line.strip()]


def record_drills(store: Any, results: list[Any]) -> None:
    recorded = store.get_meta(DRILLS_META)
    data = recorded if isinstance(recorded, dict) else {}
    for r in results:
        data.setdefault(r.tree, {})[r.drill] = {"passed": r.passed, "at": time.time(), "reached": r.reached,
                                                "expected": r.expected}
    store.set_meta(DRILLS_META, data)


def drill_results(store: Any, tree_id: str) -> dict[str, Any]:
    recorded = store.get_meta(DRILLS_META)
    return dict((recorded or {}).get(tree_id) or {}) if isinstance(recorded, dict) else {}
