"""Swap proposals and the approval policy.

Every swap, from any front door, is first a proposal: who asked, when, from -> to and why.
The policy from app.yml decides what happens next: `mode: auto` applies it at once,
`manual` waits for an operator; `two_person` refuses an approval by the requester (enforced
here, in the engine, not only in a UI); `expire_after_s` retires proposals nobody decided.
Every step is journaled with who and when.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .domains import ComponentRef, Domain
from .errors import NotFound, SwapRefused
from .events import Event, Severity
from .store import ProposalRecord, StateStore

PENDING, REJECTED, EXPIRED, APPLIED, FAILED = "pending", "rejected", "expired", "applied", "failed"
# APPROVED: decided, its swap under way (durable, so a host that dies mid-swap leaves a trace);
# INTERRUPTED: the host stopped before that swap finished (journaled `swap-interrupted`).
APPROVED, INTERRUPTED = "approved", "interrupted"
# Outcomes that leave the proposal applied: the swap ran ("complete"), nothing needed to
# change ("noop"), or, with no host running, the choice was written into settings ("selected").
_APPLIED_OUTCOMES = ("complete", "noop", "selected")


def operator_name(identity: str) -> str:
    """`alice@10.0.0.7` and `alice` are the same person for the two-person rule."""
    return identity.split("@", 1)[0].strip().lower()


class Approvals:
    def __init__(
        self,
        store: StateStore,
        emit: Callable[[Event], object],
        *,
        mode: str = "manual",
        two_person: bool = False,
        expire_after_s: float = 3600.0,
    ) -> None:
        self._store = store
        self._emit = emit
        self.mode = mode
        self.two_person = two_person
        self.expire_after_s = expire_after_s

    # -- reads -----------------------------------------------------------------------------
    def get(self, proposal_id: int) -> ProposalRecord:
        record = self._store.get_proposal(proposal_id)
        if record is None:
            raise NotFound(f"No proposal #{proposal_id} exists.")
        return record

    def pending(self) -> list[ProposalRecord]:
        self.expire_due()
        return self._store.proposals(status=PENDING)

    def recent(self, limit: int = 50) -> list[ProposalRecord]:
        return self._store.proposals(limit=limit)

    # -- changes ---------------------------------------------------------------------------
    def propose(
        self, ref: ComponentRef, to_provider: str, *, from_provider: str | None, to_source: str | None,
        force: bool, source: str, reason: str, requested_by: str,
    ) -> ProposalRecord:
        now = time.time()
        record = self._store.put_proposal(ProposalRecord(
            ref.domain.value, ref.key, from_provider, to_provider, source, requested_by, now,
            to_source=to_source, force=force, reason=reason, expires_at=now + self.expire_after_s,
        ))
        self._emit(Event(
            "swap-requested",
            f"#{record.id} {ref}: {from_provider or 'nothing'} -> {to_provider}"
            + (" (force)" if force else "") + f" requested by {requested_by} from {source}"
            + (f": {reason}" if reason else ""),
            Severity.INFO, ref.domain, ref.key, to_provider, requested_by, PENDING,
            data={"proposal": record.id, "from": from_provider, "to": to_provider, "force": force,
                  "source": source, "reason": reason},
        ))
        return record

    def approve(self, proposal_id: int, approver: str, comment: str | None = None) -> ProposalRecord:
        """Record the approval (the caller then applies the swap and calls `settle`)."""
        record = self._decidable(proposal_id)
        if self.two_person and operator_name(approver) == operator_name(record.requested_by):
            raise SwapRefused(
                f"Proposal #{record.id} was requested by {record.requested_by}; the two-person rule "
                "needs another operator to approve it."
            )
        record.status = APPROVED
        record.decided_by, record.decided_at, record.comment = approver, time.time(), comment
        self._store.put_proposal(record)
        self._emit(Event(
            "swap-approved", f"#{record.id} {record.domain}/{record.key} -> {record.to_provider} approved by "
            f"{approver}" + (f": {comment}" if comment else ""),
            Severity.INFO, _domain(record), record.key, record.to_provider, approver, "approved",
            data={"proposal": record.id, "comment": comment},
        ))
        return record

    def settle(self, record: ProposalRecord, outcome: str, reason: str) -> ProposalRecord:
        """Store what applying an approved proposal did (the swap itself journals the details)."""
        record.status = APPLIED if outcome in _APPLIED_OUTCOMES else FAILED
        record.outcome, record.outcome_reason = outcome, reason
        return self._store.put_proposal(record)

    def interrupted(self) -> list[ProposalRecord]:
        """Approved proposals whose swap never settled: their host stopped mid-swap."""
        return self._store.proposals(status=APPROVED, limit=10_000)

    def interrupt(self, record: ProposalRecord, reason: str) -> ProposalRecord:
        """Mark an approved proposal whose swap was cut short (the swap itself journals it)."""
        record.status, record.outcome, record.outcome_reason = INTERRUPTED, INTERRUPTED, reason
        return self._store.put_proposal(record)

    def reject(self, proposal_id: int, actor: str, comment: str | None = None) -> ProposalRecord:
        record = self._decidable(proposal_id)
        record.status, record.decided_by, record.decided_at, record.comment = REJECTED, actor, time.time(), comment
        self._store.put_proposal(record)
        self._emit(Event(
            "swap-rejected", f"#{record.id} {record.domain}/{record.key} -> {record.to_provider} rejected by "
            f"{actor}" + (f": {comment}" if comment else ""),
            Severity.INFO, _domain(record), record.key, record.to_provider, actor, REJECTED,
            data={"proposal": record.id, "comment": comment},
        ))
        return record

    def expire_due(self, now: float | None = None) -> list[ProposalRecord]:
        now = time.time() if now is None else now
        expired = []
        for record in self._store.proposals(status=PENDING, limit=10_000):
            if record.expires_at is not None and record.expires_at <= now:
                record.status = EXPIRED
                self._store.put_proposal(record)
                self._emit(Event(
                    "swap-expired", f"#{record.id} {record.domain}/{record.key} -> {record.to_provider} expired "
                    f"undecided after {self.expire_after_s:g}s",
                    Severity.WARNING, _domain(record), record.key, record.to_provider, None, EXPIRED,
                    data={"proposal": record.id},
                ))
                expired.append(record)
        return expired

    def _decidable(self, proposal_id: int) -> ProposalRecord:
        self.expire_due()
        record = self.get(proposal_id)
        if record.status != PENDING:
            raise SwapRefused(f"Proposal #{record.id} is {record.status}; only pending proposals can be decided.")
        return record


def _domain(record: ProposalRecord) -> Domain:
    return Domain.parse(record.domain)
