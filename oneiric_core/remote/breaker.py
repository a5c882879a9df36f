"""The circuit breaker of one remote source.

closed     syncs run; `failures` consecutive failed syncs open it
open       no automatic sync until `reset_s` has passed since it opened (`retry_at`)
half-open  `retry_at` has passed: the next sync is a trial; success closes the circuit,
           failure opens it again for another `reset_s`

One sync counts once, whatever its retries. Times are wall-clock seconds (time.time) so the
state can be recorded in the store and read by other processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self.failures = 0  # consecutive, since the last success
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self._clock() >= self.opened_at + self.reset_s else OPEN

    @property
    def retry_at(self) -> float | None:
        return None if self.opened_at is None else self.opened_at + self.reset_s

    def allows(self) -> bool:
        """Whether an automatic sync may run now (closed, or half-open for one trial)."""
        return self.state != OPEN

    def success(self) -> bool:
        """Record a good sync; True when this closed an open circuit."""
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        return was_open

    def failure(self) -> bool:
        """Record a failed sync; True when this opened a closed circuit (a failed trial in
        half-open re-opens it for another `reset_s` and returns False)."""
        self.failures += 1
        if self.opened_at is not None:
            self.opened_at = self._clock()
            return False
        if self.failures >= self.threshold:
            self.opened_at = self._clock()
            return True
        return False

    def configure(self, failures: int, reset_s: float) -> None:
        self.threshold = failures
        self.reset_s = reset_s

    def resume(self, recorded: dict[str, Any]) -> None:
        """Take up the failures and opening time another process recorded (to_dict)."""
        failures, opened_at = recorded.get("failures"), recorded.get("opened_at")
        if isinstance(failures, int) and failures >= 0:
            self.failures = failures
        if isinstance(opened_at, (int, float)):
            self.opened_at = float(opened_at)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures, "threshold": self.threshold,
                "reset_s": self.reset_s, "opened_at": self.opened_at, "retry_at": self.retry_at}


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]
