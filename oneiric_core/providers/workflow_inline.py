"""workflow/runner `inline`: runs a list of steps in order, in-process.

It exists for simple pipelines (fetch -> transform -> store) that need ordering and a clear
account of where they broke, not a workflow server. A workflow is `[(name, callable), ...]`;
each step gets the previous step's result (the first gets `initial`). The first step that
raises stops the run with WorkflowStepFailed, which names the step and keeps the results
of the steps before it. Plain steps run in a worker thread unless `sync_in_thread` is false.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..domains import HealthResult
from . import _common

Step = tuple[str, Callable[[Any], Any]]


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    results: list[tuple[str, Any]]  # (step name, its result), in order
    duration_ms: float

    @property
    def output(self) -> Any:
        """The last step's result."""
        return self.results[-1][1] if self.results else None


class WorkflowStepFailed(Exception):
    def __init__(self, index: int, step: str, cause: BaseException, results: list[tuple[str, Any]]) -> None:
        super().__init__(f"Workflow step {index + 1} {step!r} failed: {_common.describe(cause)}.")
        self.index, self.step, self.cause, self.results = index, step, cause, results


class InlineWorkflowRunner:
    def __init__(self, sync_in_thread: bool, step_timeout_s: float | None) -> None:
        self.sync_in_thread = sync_in_thread
        self.step_timeout_s = step_timeout_s
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False

    async def run(self, steps: Sequence[Step], initial: Any = None) -> WorkflowRun:
        """Run `steps` in order; WorkflowStepFailed names the first step that raised."""
        if self._stopped:
            raise RuntimeError("The inline workflow runner is stopped.")
        _check_steps(steps)
        started = time.perf_counter()
        results: list[tuple[str, Any]] = []
        value = initial
        for index, (name, fn) in enumerate(steps):
            try:
                value = await self._step(fn, value)
            except Exception as exc:
                raise WorkflowStepFailed(index, name, exc, results) from exc
            results.append((name, value))
        return WorkflowRun(results, _common.elapsed_ms(started))

    async def health(self) -> HealthResult:
        started = time.perf_counter()
        try:
            if self._stopped:
                return HealthResult.failed("The inline workflow runner is stopped.")
            run = await self.run([("probe", lambda value: value + 1)], initial=41)
            latency = _common.elapsed_ms(started)
            if run.output != 42:
                return HealthResult.failed(
                    f"The one-step probe workflow returned {run.output!r} instead of 42.", latency)
            return HealthResult.ok("ran a one-step probe workflow", latency)
        except (WorkflowStepFailed, RuntimeError) as exc:  # the step, or stopped under the probe
            return HealthResult.failed(f"The probe workflow failed: {_common.describe(exc)}.",
                                       _common.elapsed_ms(started))

    async def stop(self) -> None:
        """Refuse new runs and cancel the steps in flight (their runs end with WorkflowStepFailed)."""
        self._stopped = True
        pending = list(self._inflight)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _step(self, fn: Callable[[Any], Any], value: Any) -> Any:
        task = asyncio.create_task(_common.call(fn, value, in_thread=self.sync_in_thread))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            async with asyncio.timeout(self.step_timeout_s):  # None: no limit
                return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and self._stopped and not (current and current.cancelling()):
                raise RuntimeError("the workflow runner was stopped during this step") from None
            raise


def _check_steps(steps: Any) -> None:
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise ValueError("A workflow must be a non-empty list of (name, callable) steps.")
    for position, step in enumerate(steps, 1):
        if not (isinstance(step, (tuple, list)) and len(step) == 2 and isinstance(step[0], str) and step[0]):
            raise ValueError(f"Workflow step {position} must be a (name, callable) pair, got {step!r}.")
        _common.check_callable(step[1], f"Workflow step {position} {step[0]!r}")


def create(settings: dict[str, Any]) -> InlineWorkflowRunner:
    return InlineWorkflowRunner(
        sync_in_thread=_common.flag(settings, "sync_in_thread", True),
        step_timeout_s=_common.number(settings, "step_timeout_s", None, positive=True, allow_none=True),
    )
