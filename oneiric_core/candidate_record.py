"""What the journal remembers of each candidate of a key: its last health gate and how often
it failed lately.

Why from the journal: the host keeps the last gate result in memory (Engine.candidate_health),
which a client console never sees and a restarted host has lost. After three rollbacks to
redis the swap picker said `health: ? UNKNOWN`, so the rule that asks for the key name before
a risky swap never fired, and nothing said "rolled back 3x in 15 min". Every swap's outcome is
journaled with its gate's answer (lifecycle._timings), so any process reads the same record.

Pure: `records` reads events it is given; Engine.candidate_records fetches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .events import Event

SWAP_OUTCOME_KINDS = ("swap-complete", "swap-rollback", "swap-failed")
WINDOW_S = 15 * 60.0  # "rolled back 3x in 15 min": long enough to span a night's retries


@dataclass(frozen=True, slots=True)
class LastGate:
    """A candidate's last health gate: "ok" | "degraded" | "failed" | "unknown", its message,
    when. A build that failed before the gate ran counts as "failed" with the build's reason:
    the candidate did not come up, which is what the operator picking it needs to know."""

    status: str
    message: str
    ts: float


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """One candidate's record: its last gate and its failures within `window_s` before now."""

    provider: str
    last_gate: LastGate | None = None
    rollbacks: int = 0
    failed_activations: int = 0
    window_s: float = WINDOW_S

    @property
    def failures(self) -> int:
        return self.rollbacks + self.failed_activations

    def sentence(self) -> str:
        """"rolled back 3x in 15 min" (and failed activations), or "" when nothing failed."""
        parts = []
        if self.rollbacks:
            parts.append(f"rolled back {self.rollbacks}x")
        if self.failed_activations:
            parts.append(f"failed to activate {self.failed_activations}x")
        if not parts:
            return ""
        return f"{' and '.join(parts)} in {window_words(self.window_s)}"


def window_words(window_s: float) -> str:
    minutes = window_s / 60
    return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"


def gate_of(event: Event) -> LastGate | None:
    """The gate result one swap outcome event carries (None for a refused swap, which says
    nothing about the candidate's health)."""
    if event.kind not in SWAP_OUTCOME_KINDS or event.outcome == "refused":
        return None
    data = event.data if isinstance(event.data, dict) else {}
    gate = data.get("gate")
    if isinstance(gate, dict) and isinstance(gate.get("status"), str):
        return LastGate(gate["status"], str(gate.get("message") or ""), event.ts)
    if event.kind == "swap-complete":  # journaled before gates were: it passed (or was forced)
        return LastGate("ok" if not data.get("force") else "unknown", "", event.ts)
    return LastGate("failed", str(data.get("reason") or event.message), event.ts)


def records(events: Iterable[Event], *, now: float, window_s: float = WINDOW_S) -> dict[str, CandidateRecord]:
    """Each candidate (by provider name) of the events given, oldest event first: its newest
    gate and the rollbacks and failed activations since `now - window_s`."""
    gates: dict[str, LastGate] = {}
    rollbacks: dict[str, int] = {}
    failed: dict[str, int] = {}
    since = now - window_s
    for event in events:
        provider = event.provider
        if not provider:
            continue
        gate = gate_of(event)
        if gate is None:
            continue
        gates[provider] = gate
        if event.ts >= since:
            if event.kind == "swap-rollback":
                rollbacks[provider] = rollbacks.get(provider, 0) + 1
            elif event.kind == "swap-failed":
                failed[provider] = failed.get(provider, 0) + 1
    return {
        provider: CandidateRecord(provider, gate, rollbacks.get(provider, 0), failed.get(provider, 0), window_s)
        for provider, gate in gates.items()
    }


def last_known_health(*, serving: tuple[str, str] | None, record: CandidateRecord | None,
                      seen: tuple[str, str] | None) -> tuple[str, str]:
    """What the swap picker shows as a candidate's health, as (status, message): the live
    health when it serves (`serving`), else its last gate in the journal (`record`), else the
    last health this process saw of it (`seen`: a probe or gate the journal could not give),
    else "unknown". The journal comes before this process's memory so that host and client,
    and a host restarted since, show the same."""
    if serving is not None:
        return serving
    if record is not None and record.last_gate is not None:
        return record.last_gate.status, record.last_gate.message
    if seen is not None:
        return seen
    return "unknown", ""
