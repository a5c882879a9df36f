"""The status of one remote source, as the host keeps it in the store for every other process.

The host writes one record per source to the store's meta table (`remote_source:<name>`)
after every attempt, so `oneiric remote-status` and a console attached to the host show the
same thing the host knows. `state` sums it up:

  pending   never synced and nothing cached
  ok        the last attempt got a good manifest (fresh, or unchanged: 304)
  stale     the last attempt failed, or none was made yet, and the last good manifest (from
            this run or the cache) stays in force
  failing   the last attempt failed and no manifest was ever good
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from .breaker import HALF_OPEN, OPEN

META_PREFIX = "remote_source:"


def meta_key(name: str) -> str:
    return META_PREFIX + name


@dataclass
class SourceStatus:
    name: str
    uri: str
    interval_s: float
    signature_required: bool
    last_attempt_at: float | None = None
    last_success_at: float | None = None  # the last attempt that ended with a good manifest (fresh or 304)
    last_change_at: float | None = None  # the last time the registered set changed
    last_error: str | None = None
    last_error_kind: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    total_failures: int = 0
    total_syncs: int = 0  # attempts that succeeded
    last_duration_ms: float | None = None
    next_attempt_at: float | None = None
    in_force: str | None = None  # "fetched" (this process fetched it) | "cache" (last good, from disk) | None
    stale: bool = False
    # name, version, generated_at, expires_at, digest, signed_digest, entries, size, etag, fetched_at
    manifest: dict[str, Any] | None = None
    # the ledger: the highest version ever accepted {version, signed_digest, expires_at, accepted_at}
    accepted: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None  # Verification.to_dict()
    # The Verification of the last manifest refused for its signatures (which trusted key ids
    # failed, which ids are not trusted here): what tells tampering from a key rotation.
    signature_failure: dict[str, Any] | None = None
    entries: dict[str, int] = field(default_factory=dict)  # registered entries per domain
    rejected: list[dict[str, Any]] = field(default_factory=list)  # Rejection.to_dict() each
    breaker: dict[str, Any] = field(default_factory=dict)  # CircuitBreaker.to_dict()
    reported_by: dict[str, Any] | None = None  # pid, hostname, updated_at of the process that wrote it

    @property
    def state(self) -> str:
        if self.consecutive_failures and self.last_attempt_at is not None:
            return "stale" if self.manifest is not None else "failing"
        if self.manifest is None:
            return "pending"
        return "stale" if self.stale else "ok"

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        out = dataclasses.asdict(self)
        out["state"] = self.state
        out["age_s"] = None if self.last_success_at is None else round(max(0.0, now - self.last_success_at), 3)
        out["breaker"] = current_breaker(self.breaker, now)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SourceStatus:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


# What a process carries over from the status the last one recorded (RemoteSource.carry_on):
# the counters and the history of attempts, never what it derives itself (the manifest in
# force, its entries, the configuration).
HISTORY_FIELDS = ("last_attempt_at", "last_success_at", "last_change_at", "last_error", "last_error_kind",
                  "last_error_at", "consecutive_failures", "total_failures", "total_syncs", "last_duration_ms")


def current_breaker(breaker: dict[str, Any], now: float) -> dict[str, Any]:
    """A recorded breaker as it stands `now`: an open circuit whose retry time has passed is half-open."""
    out = dict(breaker) if breaker else {"state": "closed", "failures": 0, "opened_at": None, "retry_at": None}
    retry_at = out.get("retry_at")
    if out.get("state") == OPEN and isinstance(retry_at, (int, float)) and now >= retry_at:
        out["state"] = HALF_OPEN
    return out


__all__ = ["HISTORY_FIELDS", "META_PREFIX", "SourceStatus", "current_breaker", "meta_key"]
