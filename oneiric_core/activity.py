"""Pause, drain and resume: per-key switches that stop new work without touching providers.

A paused key makes `use()` raise ComponentPaused (a clear error, never "not found") and
refuses swaps unless forced. Drain stops new work, waits for in-flight uses to finish and
then reports the key *drained*. Both are persisted in the store so they survive restarts
and every process sees them; every change is journaled with who made it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable

from .domains import ComponentRef, Domain
from .events import Event, Severity
from .store import ActivityRecord, StateStore


class ActivityState(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DRAINING = "draining"
    DRAINED = "drained"


class ActivityManager:
    def __init__(self, store: StateStore | None, emit: Callable[[Event], object],
                 publish: Callable[[Event], None] | None = None) -> None:
        """`emit` journals and fans out an event (without a store); `publish` only fans out
        one that is already journaled (with a store, a change and its journal line are
        written in one transaction, see `_set`)."""
        self._store = store
        self._emit = emit
        self._publish = publish or emit
        self._records: dict[ComponentRef, ActivityRecord] = {}
        self.reload()

    def reload(self) -> set[ComponentRef]:
        """Re-read the store (another process may have changed it); returns the refs that changed."""
        if self._store is None:
            return set()
        fresh = {
            ComponentRef(Domain.parse(r.domain), r.key): r
            for r in self._store.all_activity()
            if r.state != ActivityState.ACTIVE.value
        }
        changed = {
            ref for ref in set(fresh) | set(self._records)
            if (fresh.get(ref) and fresh[ref].state) != (self._records.get(ref) and self._records[ref].state)
        }
        self._records = fresh
        return changed

    def drift(self) -> list[tuple[ComponentRef, str, str]]:
        """Keys whose row in the store differs from what this process holds: (ref, the state
        found in the store, the state held here). Only the host writes activity while it runs,
        so on the host any drift was written behind its back."""
        if self._store is None:
            return []
        found = {ComponentRef(Domain.parse(r.domain), r.key): r.state for r in self._store.all_activity()}
        held = {ref: rec.state for ref, rec in self._records.items()}
        active = ActivityState.ACTIVE.value
        return sorted(((ref, found.get(ref, active), held.get(ref, active)) for ref in set(found) | set(held)
                       if found.get(ref, active) != held.get(ref, active)), key=lambda d: str(d[0]))

    def restore(self, ref: ComponentRef) -> None:
        """Write the record held here back into the store (undoing a change made behind it)."""
        if self._store is not None:
            self._store.set_activity(self._records.get(ref) or ActivityRecord(
                ref.domain.value, ref.key, ActivityState.ACTIVE.value, None, None, time.time()))

    # -- reads -----------------------------------------------------------------------------
    def get(self, ref: ComponentRef) -> ActivityRecord:
        return self._records.get(ref) or ActivityRecord(ref.domain.value, ref.key, ActivityState.ACTIVE.value)

    def state(self, ref: ComponentRef) -> ActivityState:
        rec = self._records.get(ref)
        return ActivityState(rec.state) if rec else ActivityState.ACTIVE

    def all(self) -> list[ActivityRecord]:
        return sorted(self._records.values(), key=lambda r: (r.domain, r.key))

    def blocker(self, ref: ComponentRef) -> str | None:
        """Why new work on `ref` is refused, or None. On the `use()` hot path: one dict lookup."""
        rec = self._records.get(ref)
        if rec is None:
            return None
        who = f" by {rec.actor}" if rec.actor else ""
        note = f" ({rec.note})" if rec.note else ""
        return f"{ref} is {rec.state}{who}{note}"

    # -- changes ---------------------------------------------------------------------------
    def _set(self, ref: ComponentRef, state: ActivityState, actor: str | None, note: str | None,
             message: str, duration_ms: float | None = None) -> ActivityRecord:
        """Record a change: in the store, the new state and its journal line in one
        transaction, or (StoreError, raised) neither, and nothing changes here either: an
        operator is never told "Paused" for a pause that no other process can see or that
        the journal does not hold."""
        previous = self.state(ref)
        record = ActivityRecord(ref.domain.value, ref.key, state.value, note, actor, time.time())
        severity = Severity.INFO if state in (ActivityState.ACTIVE, ActivityState.DRAINED) else Severity.WARNING
        event = Event(
            "activity-changed", message, severity, ref.domain, ref.key, actor=actor,
            outcome=state.value, duration_ms=duration_ms,
            data={"from": previous.value, "to": state.value, "note": note},
        )
        if self._store is not None:
            with self._store.batch():
                self._store.set_activity(record)
                self._store.append(event)
        if state == ActivityState.ACTIVE:
            self._records.pop(ref, None)
        else:
            self._records[ref] = record
        if self._store is not None:
            self._publish(event)
        else:
            self._emit(event)
        return record

    def pause(self, ref: ComponentRef, *, actor: str | None = None, note: str | None = None) -> ActivityRecord:
        return self._set(ref, ActivityState.PAUSED, actor, note,
                         f"{ref} paused" + (f" by {actor}" if actor else "") + (f": {note}" if note else ""))

    def resume(self, ref: ComponentRef, *, actor: str | None = None, note: str | None = None) -> ActivityRecord:
        return self._set(ref, ActivityState.ACTIVE, actor, None,
                         f"{ref} resumed" + (f" by {actor}" if actor else "") + (f": {note}" if note else ""))

    def begin_drain(self, ref: ComponentRef, *, actor: str | None = None, note: str | None = None,
                    inflight: int = 0) -> ActivityRecord:
        return self._set(ref, ActivityState.DRAINING, actor, note,
                         f"{ref} draining ({inflight} in flight)" + (f" by {actor}" if actor else "")
                         + (f": {note}" if note else ""))

    async def drain(
        self,
        ref: ComponentRef,
        *,
        inflight: Callable[[], int],
        wait_idle: Callable[[float], Awaitable[object]],
        actor: str | None = None,
        note: str | None = None,
        timeout: float | None = None,
    ) -> ActivityRecord:
        """Stop new work, wait for in-flight uses to finish, then mark the key drained."""
        self.begin_drain(ref, actor=actor, note=note, inflight=inflight())
        return await self.finish_drain(ref, inflight=inflight, wait_idle=wait_idle, actor=actor,
                                       note=note, timeout=timeout)

    async def finish_drain(
        self,
        ref: ComponentRef,
        *,
        inflight: Callable[[], int],
        wait_idle: Callable[[float], Awaitable[object]],
        actor: str | None = None,
        note: str | None = None,
        timeout: float | None = None,
    ) -> ActivityRecord:
        """Wait for a draining key to go idle and mark it drained.

        Returns early (still draining) if `timeout` passes, or when someone resumes the key."""
        t0 = time.perf_counter()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state(ref) == ActivityState.DRAINING:
            if inflight() == 0:
                waited = (time.perf_counter() - t0) * 1000
                return self._set(ref, ActivityState.DRAINED, actor, note,
                                 f"{ref} drained: no work in flight", duration_ms=waited)
            step = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if step <= 0:
                break
            await wait_idle(step)
        return self.get(ref)
