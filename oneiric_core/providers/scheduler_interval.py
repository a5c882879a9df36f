"""service/scheduler `interval`: runs named jobs every N seconds inside the host process.

It exists for housekeeping that must happen on a beat (pruning, refreshing, polling)
without cron. One asyncio task wakes when the next job is due and launches it as its own
task, so a slow job delays nobody else; a job still running when it comes due again is
skipped rather than overlapped or replayed. Plain functions run in a worker thread, coroutine
functions on the loop. Health fails when the loop task has died and is degraded when a
job is overdue by more than two intervals or its last run raised.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domains import HealthResult
from . import _common

log = logging.getLogger(__name__)

OVERDUE_INTERVALS = 2


@dataclass
class Job:
    name: str
    interval_s: float
    fn: Callable[[], Any]
    next_due: float  # time.monotonic()
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_duration_ms: float | None = None
    running: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def busy(self) -> bool:
        return self.running is not None and not self.running.done()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name, "interval_s": self.interval_s, "runs": self.runs,
            "failures": self.failures, "skipped": self.skipped, "last_error": self.last_error,
            "last_duration_ms": self.last_duration_ms,
            "running": self.busy,
        }


class IntervalScheduler:
    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._jobs: dict[str, Job] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._waker: asyncio.Future[None] | None = None  # the loop's sleep; resolving it wakes the loop
        self._stopped = False

    def add_job(self, name: str, interval_s: float, fn: Callable[[], Any], *, run_now: bool = False) -> None:
        """Run `fn()` every `interval_s` seconds; the first run is one interval away unless `run_now`."""
        if self._stopped:
            raise RuntimeError("The scheduler is stopped; it takes no new jobs.")
        if not isinstance(name, str) or not name:
            raise ValueError(f"Job names must be non-empty strings, got {name!r}.")
        if name in self._jobs:
            raise ValueError(f"A job named {name!r} is already scheduled.")
        if (isinstance(interval_s, bool) or not isinstance(interval_s, (int, float))
                or not math.isfinite(interval_s) or interval_s < self.min_interval_s):
            raise ValueError(f"Job {name!r} needs an interval of at least {self.min_interval_s:g} s, "
                             f"got {interval_s!r}.")
        _common.check_callable(fn, f"Job {name!r}")
        first = time.monotonic() + (0.0 if run_now else float(interval_s))
        self._jobs[name] = Job(name, float(interval_s), fn, first)
        self._wake()

    def remove_job(self, name: str) -> bool:
        """Unschedule `name` (a run in progress finishes); True when it existed."""
        job = self._jobs.pop(name, None)
        self._wake()
        return job is not None

    def jobs(self) -> list[dict[str, Any]]:
        return [job.snapshot() for job in self._jobs.values()]

    async def start(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._stopped = False
            self._loop_task = asyncio.create_task(self._loop(), name="oneiric-scheduler-interval")

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        task = self._loop_task
        if task is None:
            return HealthResult.failed("The scheduler loop is not running (not started or stopped).")
        if task.done():
            error = None if task.cancelled() else task.exception()
            why = f"it died with {_common.describe(error)}" if error else "it ended"
            return HealthResult.failed(f"The scheduler loop is not running: {why}.", _common.elapsed_ms(started))
        now = time.monotonic()
        for job in self._jobs.values():
            late = now - job.next_due
            if late > OVERDUE_INTERVALS * job.interval_s:
                return HealthResult.degraded(
                    f"Job {job.name!r} is overdue by {late:.1f} s (its interval is {job.interval_s:g} s).",
                    _common.elapsed_ms(started))
        for job in self._jobs.values():
            if job.last_error is not None:
                return HealthResult.degraded(f"Job {job.name!r} failed its last run: {job.last_error}.",
                                             _common.elapsed_ms(started))
        return HealthResult.ok(f"{len(self._jobs)} job(s) on schedule", _common.elapsed_ms(started))

    async def stop(self) -> None:
        self._stopped = True
        tasks = list(self._running)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
        self._loop_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            for job in list(self._jobs.values()):
                if job.busy or job.next_due > now:
                    continue
                # Beats missed while the job was busy (or the loop blocked) are skipped, not
                # replayed; the next beat stays on the original grid so the schedule never drifts.
                missed = int((now - job.next_due) // job.interval_s)
                job.skipped += missed
                job.next_due += (missed + 1) * job.interval_s
                job.running = asyncio.create_task(self._run(job), name=f"oneiric-job-{job.name}")
                self._running.add(job.running)
                job.running.add_done_callback(self._job_finished)
            # A busy job is looked at again when it finishes (the callback wakes us); until
            # then its next_due stays put, so its lateness grows and health can see it.
            waiting = [job.next_due for job in self._jobs.values() if not job.busy]
            delay = min(waiting, default=now + 3600.0) - time.monotonic()
            if delay > 0:
                self._waker = loop.create_future()
                timer = loop.call_later(delay, self._wake)
                try:
                    await self._waker
                finally:
                    timer.cancel()
                    self._waker = None

    def _wake(self) -> None:
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake()

    async def _run(self, job: Job) -> None:
        started = time.perf_counter()
        try:
            await _common.call(job.fn, in_thread=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a job is its owner's code: its failure is recorded, the schedule goes on
            job.failures += 1
            job.last_error = _common.describe(exc)
            log.warning("scheduled job %r failed: %s", job.name, job.last_error)
        else:
            job.last_error = None
        finally:
            job.runs += 1
            job.last_duration_ms = _common.elapsed_ms(started)


def create(settings: dict[str, Any]) -> IntervalScheduler:
    return IntervalScheduler(min_interval_s=_common.number(settings, "min_interval_s", 0.01, positive=True))
