"""Journal retention as the host runs it: in short transactions on a worker thread, short of
what an open incident keeps, giving the space back.

The journal keeps `journal.max_age_days` and `journal.max_rows` (app.yml). The host prunes at
start and every hour (host_session.py). Three things shape how:

* **The event loop never waits long.** The store is one connection under a lock that the
  loop also takes for every event it journals, so a prune must never hold it long: `prune`
  runs on a worker thread (`asyncio.to_thread`) and works in steps, each its own transaction
  (store.prune_journal_batch: a few thousand rows; store.reclaim_space: a few hundred
  pages), each sized to take about TARGET_STEP_S, with a pause between them in which the
  loop's writes get the lock. The step sizes follow the disk: a step that took longer than
  the target makes the next one smaller. The WAL is copied into the file on a connection of
  the prune's own, off the lock (store.WalCheckpoints): otherwise the commit that crosses
  SQLite's autocheckpoint mark pays for it, fsyncs included, and that may be the loop's.
  bench/prune.py measures the loop's worst stall.
* **An open incident keeps its evidence.** Every event of a component an incident involves
  (its `refs`) and every event from when it opened (its timeline's window) stay while it is
  not closed. The journal is a hash chain that retention may only cut as a prefix (the last
  row cut is the anchor `journal verify` starts from; a row cut between two kept ones would
  be a hole it names as deleted), so the prune stops at the first row an open incident
  keeps: everything after it stays too. The price: an incident left open holds retention
  back, and the journal grows for as long as it stays open. The prune says so (the
  `journal-pruned` event, `oneiric status`): "held back by open incident #5 ... since ...".
  Closing the incident lets the next prune take the rows. (Keeping only the incident's rows
  would take holes the chain accepts: each one recorded with the hashes at its edges, as the
  anchor is for the prefix, and journal_chain.verify checking against them. Not done here.)
* **The file shrinks.** Stores are created with `auto_vacuum = INCREMENTAL` (older ones are
  switched by a one-time VACUUM, store.py migration 8), and after the rows go their pages are
  handed back (`PRAGMA incremental_vacuum`), a few hundred per transaction.

The outcome is a `PruneReport`; the last one is kept in meta for `oneiric status`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import PRUNE_PROGRESS_META, Checkpoints, RetentionHold, StateStore, StoreError
from .text import one_line

REPORT_META = "journal_retention"  # the last PruneReport, as to_dict() writes it
TARGET_STEP_S = 0.005  # each transaction of a prune aims at this long (the loop waits at most about this)
PAUSE_S = 0.003  # between two steps: the loop's writes, waiting on the store's lock, get it here
FIRST_ROWS = 1000  # the first steps' sizes: small, since the pages they touch may not be cached yet
FIRST_PAGES = 100
ROWS_RANGE = (200, 50_000)  # bounds of the rows per prune step
PAGES_RANGE = (16, 8_000)  # bounds of the pages per reclaim step


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What the journal keeps: events younger than `max_age_s`, and the newest `max_rows`."""

    max_age_s: float | None
    max_rows: int | None


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune did, in figures, and what held it back."""

    pruned: int  # rows deleted
    batches: int  # prune transactions
    took_s: float
    bytes_before: int  # the store on disk (main file and WAL)
    bytes_after: int
    pages_reclaimed: int  # pages handed back to the file system
    held_by: RetentionHold | None = None  # the open incident the prune stopped at
    not_reclaimed: str | None = None  # why freed pages stay in the file, when they do
    interrupted: bool = False  # the host stopped it between two steps
    at: float = 0.0  # when it finished (epoch)

    @property
    def worth_journaling(self) -> bool:
        """A prune that removed rows, was held back or stopped early (pages handed back alone
        are not news: other deletions free a few now and then)."""
        return bool(self.pruned or self.held_by or self.interrupted)

    def sentence(self) -> str:
        noun = "event" if self.pruned == 1 else "events"
        parts = [f"journal retention pruned {self.pruned:,} {noun}"]
        if self.pruned:
            parts[0] += (f" in {self.batches:,} transaction{'s' if self.batches != 1 else ''} "
                         f"({self.took_s:.1f}s)")
        if self.pages_reclaimed or self.bytes_after < self.bytes_before:
            parts.append(f"the store went from {_mb(self.bytes_before)} to {_mb(self.bytes_after)}")
        if self.not_reclaimed and self.pruned:
            parts.append(f"the file keeps its size: {self.not_reclaimed}")
        if self.held_by is not None:
            parts.append(held_sentence(self.held_by))
        if self.interrupted:
            parts.append("it stopped early because the host is stopping; the next prune goes on")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "batches": self.batches, "took_s": round(self.took_s, 3),
                "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
                "pages_reclaimed": self.pages_reclaimed,
                "held_by": None if self.held_by is None else self.held_by.to_dict(),
                "not_reclaimed": self.not_reclaimed, "interrupted": self.interrupted, "at": self.at}


def held_sentence(hold: RetentionHold) -> str:
    """"retention held back by open incident #5 (title) since ...: ..." (the title as one line)."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(hold.opened_at))
    why = (f"an event of {one_line(hold.ref)}, which it involves" if hold.ref
           else "an event from the time it has been open")
    return (f"retention held back by open incident #{hold.incident} ({one_line(hold.title)}) since {since}: "
            f"events from #{hold.first_id} on ({why}) are kept until it closes")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class _Pace:
    """Sizes each step so its transaction takes about TARGET_STEP_S, from the rate the last one
    ran at: at most half again the last size (a step that ran fast on cached pages says little
    about the next), less when part of the step's time went elsewhere (a WAL restart)."""

    def __init__(self, size: int, bounds: tuple[int, int], target_s: float) -> None:
        self.size, self.bounds, self.target_s = size, bounds, target_s

    def share(self, spent_s: float) -> int:
        """The size for a step of which `spent_s` already went."""
        return max(self.bounds[0], int(self.size * max(0.0, 1.0 - spent_s / self.target_s)))

    def took(self, used: int, elapsed_s: float) -> None:
        low, high = self.bounds
        grown = max(used, self.size) * 3 // 2
        wanted = grown if elapsed_s <= 0 else used * self.target_s / elapsed_s
        self.size = int(max(low, min(high, grown, wanted)))


def prune(store: StateStore, policy: RetentionPolicy, *, now: float | None = None,
          stop: threading.Event | None = None, target_s: float = TARGET_STEP_S,
          pause_s: float = PAUSE_S) -> PruneReport:
    """Apply `policy` to the journal, in steps; blocking, for a worker thread (the host runs
    it with asyncio.to_thread). Returns between two steps once `stop` is set. Records the
    report in meta (REPORT_META). A StoreError from a step ends the prune and is raised: what
    the steps before it committed stays done (each step leaves the chain whole)."""
    started = time.perf_counter()
    before = store.file_bytes()
    cutoff = None if policy.max_age_s is None else (time.time() if now is None else now) - policy.max_age_s
    through = store.journal_rows_through(policy.max_rows)
    rows = _Pace(FIRST_ROWS, ROWS_RANGE, target_s)
    reclaimed = 0

    with store.checkpoints_aside() as wal:
        wal.progress = {"started_at": time.time()}

        def pause() -> bool:
            """Checkpoint (off the store's lock), let the loop in; True when the host wants
            the prune to stop."""
            wal.backfill()
            time.sleep(pause_s)
            return stop is not None and stop.is_set()

        pruned, batches, held, interrupted = _delete(store, wal, cutoff, through, rows, pause)
        not_reclaimed = store.vacuum_owed()
        if not_reclaimed is None and not interrupted:
            reclaimed, interrupted = _reclaim(store, wal, _Pace(FIRST_PAGES, PAGES_RANGE, target_s), pause)
        wal.backfill(restart=True)  # the WAL back to its limit on disk, if no commit is in the way
    report = PruneReport(pruned, batches, time.perf_counter() - started, before, store.file_bytes(), reclaimed,
                         held, not_reclaimed, interrupted, time.time())
    store.set_meta(REPORT_META, report.to_dict())
    store.delete_meta(PRUNE_PROGRESS_META)
    return report


def _delete(store: StateStore, wal: Checkpoints, cutoff: float | None, through: int | None, rows: _Pace,
            pause: Callable[[], bool]) -> tuple[int, int, RetentionHold | None, bool]:
    """The prune's transactions: rows deleted, transactions, the hold met, interrupted."""
    pruned = batches = 0
    held: RetentionHold | None = None
    while True:
        with wal.restarting() as spent:
            t0, limit = time.perf_counter(), rows.share(spent)
            step = store.prune_journal_batch(cutoff=cutoff, rows_through=through, limit=limit)
            rows.took(limit, time.perf_counter() - t0)
        pruned += step.deleted
        batches += 1 if step.deleted else 0
        held = step.held_by or held
        if step.done:
            break
        if pause():
            return pruned, batches, held, True
    return pruned, batches, held, False


def _reclaim(store: StateStore, wal: Checkpoints, pages: _Pace,
             pause: Callable[[], bool]) -> tuple[int, bool]:
    """Hand the free pages back, a step at a time: pages reclaimed, interrupted."""
    reclaimed = 0
    while True:
        with wal.restarting() as spent:
            t0, limit = time.perf_counter(), pages.share(spent)
            freed = store.reclaim_space(limit)
            pages.took(limit, time.perf_counter() - t0)
        reclaimed += freed
        if not freed:
            return reclaimed, False
        if pause():
            return reclaimed, True


def last_report(store: StateStore) -> dict[str, Any] | None:
    """The last prune's report as the host recorded it, its `held_by` dropped when that
    incident has been closed since (the next prune takes its rows); None before any prune."""
    try:
        data = store.get_meta(REPORT_META)
        if not isinstance(data, dict):
            return None
        hold = data.get("held_by")
        if isinstance(hold, dict):
            row = store.get_incident(int(hold.get("incident") or 0))
            if row is None or row.status == "closed":
                data = {**data, "held_by": None}
        return data
    except (StoreError, TypeError, ValueError):
        return None


def status_line(store: StateStore) -> str | None:
    """The line `oneiric status` prints while an open incident holds retention back."""
    data = last_report(store)
    hold = data.get("held_by") if data else None
    if not isinstance(hold, dict):
        return None
    try:
        held = RetentionHold(int(hold["incident"]), str(hold["title"]), float(hold["opened_at"]),
                             int(hold["first_id"]), hold.get("ref"))
    except (KeyError, TypeError, ValueError):
        return None
    return f"journal {held_sentence(held)}"


__all__ = ["PruneReport", "RetentionPolicy", "last_report", "prune", "status_line"]
