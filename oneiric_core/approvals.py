"""Swap proposals and the approval policy.

Every swap, from any front door, is first a proposal: who asked, when, from -> to and why.
The policy from app.yml decides what happens next: `mode: auto` applies it at once,
`manual` waits for an operator; `two_person` refuses an approval by the requester (enforced
here, in the engine, not only in a UI); `expire_after_s` retires proposals nobody decided.
Every step is journaled with who and when. "Who" is a verified Principal (principal.py):
the two-person rule compares principal ids, never the names people chose to display; and a
proposal row whose seal does not match (edited outside the host, seal.py) is never decided.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .domains import ComponentRef, Domain
from .errors import NotFound, OneiricError, SwapRefused
from .events import Event, Severity
from .principal import Principal
from .store import ProposalRecord, StateStore

PENDING, REJECTED, EXPIRED, APPLIED, FAILED = "pending", "rejected", "expired", "applied", "failed"
# APPROVED: decided, its swap under way (durable, so a host that dies mid-swap leaves a trace);
# INTERRUPTED: the host stopped before that swap finished (journaled `swap-interrupted`).
APPROVED, INTERRUPTED = "approved", "interrupted"
# TAMPERED: the row was changed outside the host (its seal did not match, seal.py); closed for good.
TAMPERED = "tampered"
# Outcomes that leave the proposal applied: the swap ran ("complete"), nothing needed to
# change ("noop"), or, with no host running, the choice was written into settings ("selected").
_APPLIED_OUTCOMES = ("complete", "noop", "selected")


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
        """Proposal #`proposal_id`, of any node of a fleet store (to show it; only its own
        node's host decides it: `_decidable`)."""
        record = self._store.find_proposal(proposal_id)
        if record is None:
            raise NotFound(f"No proposal #{proposal_id} exists.")
        return record

    def pending(self) -> list[ProposalRecord]:
        self.expire_due()
        return [p for p in self._store.proposals(status=PENDING) if p.sealed is not False]

    def recent(self, limit: int = 50) -> list[ProposalRecord]:
        return self._store.proposals(limit=limit)

    # -- changes ---------------------------------------------------------------------------
    def propose(
        self, ref: ComponentRef, to_provider: str, *, from_provider: str | None, to_source: str | None,
        force: bool, source: str, reason: str, requested_by: Principal,
    ) -> ProposalRecord:
        now = time.time()
        with self._store.batch():  # the proposal and its journal line: one commit (issue 18)
            record = self._store.put_proposal(ProposalRecord(
                ref.domain.value, ref.key, from_provider, to_provider, source, requested_by.label, now,
                to_source=to_source, force=force, reason=reason, expires_at=now + self.expire_after_s,
                requested_by_id=requested_by.id,
            ))
            self._emit_requested(record, ref, from_provider, to_provider, force=force, source=source,
                                 reason=reason, requested_by=requested_by)
        return record

    def _emit_requested(self, record: ProposalRecord, ref: ComponentRef, from_provider: str | None,
                        to_provider: str, *, force: bool, source: str, reason: str,
                        requested_by: Principal) -> None:
        self._emit(Event(
            "swap-requested",
            f"#{record.id} {ref}: {from_provider or 'nothing'} -> {to_provider}"
            + (" (force)" if force else "") + f" requested by {requested_by} from {source}"
            + (f": {reason}" if reason else ""),
            Severity.INFO, ref.domain, ref.key, to_provider, requested_by.label, PENDING,
            data={"proposal": record.id, "from": from_provider, "to": to_provider, "force": force,
                  "source": source, "reason": reason, "requested_by_id": requested_by.id},
        ))

    def approve(self, proposal_id: int, approver: Principal, comment: str | None = None) -> ProposalRecord:
        """Record the approval (the caller then applies the swap and calls `settle`)."""
        record = self._decidable(proposal_id)
        if self.two_person and approver.same_as(record.requested_by_id or record.requested_by):
            raise SwapRefused(
                f"Proposal #{record.id} was requested by {record.requested_by}; the two-person rule "
                f"needs another operator to approve it (you are {approver.id})."
            )
        record.status = APPROVED
        record.decided_by, record.decided_at, record.comment = approver.label, time.time(), comment
        record.decided_by_id = approver.id
        with self._store.batch():  # the decision and its journal line: one commit
            self._store.put_proposal(record)
            self._emit_decided(record, approver, comment)
        return record

    def _emit_decided(self, record: ProposalRecord, approver: Principal, comment: str | None) -> None:
        self._emit(Event(
            "swap-approved", f"#{record.id} {record.domain}/{record.key} -> {record.to_provider} approved by "
            f"{approver.label}" + (f": {comment}" if comment else ""),
            Severity.INFO, _domain(record), record.key, record.to_provider, approver.label, "approved",
            data={"proposal": record.id, "comment": comment, "decided_by_id": approver.id,
                  "via": approver.via},
        ))

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

    def reject(self, proposal_id: int, actor: Principal, comment: str | None = None) -> ProposalRecord:
        record = self._decidable(proposal_id)
        record.status, record.decided_by = REJECTED, actor.label
        record.decided_at, record.comment = time.time(), comment
        record.decided_by_id = actor.id
        self._store.put_proposal(record)
        self._emit(Event(
            "swap-rejected", f"#{record.id} {record.domain}/{record.key} -> {record.to_provider} rejected by "
            f"{actor.label}" + (f": {comment}" if comment else ""),
            Severity.INFO, _domain(record), record.key, record.to_provider, actor.label, REJECTED,
            data={"proposal": record.id, "comment": comment, "decided_by_id": actor.id},
        ))
        return record

    def expire_due(self, now: float | None = None) -> list[ProposalRecord]:
        now = time.time() if now is None else now
        expired = []
        for record in self._store.proposals(status=PENDING, limit=10_000):
            if record.sealed is False:  # not the host's row: the tamper scan journals it
                continue
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
        if self._store.scope.shared and record.node != self._store.node:
            raise OneiricError(f"Proposal #{record.id} is node {record.node}'s, and only that node's host decides it "
                               f"('oneiric approve {record.id}' sends it there).")
        if record.sealed is False:
            self._emit(Event(
                "store-tampered", f"proposal #{record.id} ({record.domain}/{record.key} -> {record.to_provider}) "
                "was changed outside the host; it can no longer be approved", Severity.ERROR,
                _domain(record), record.key, record.to_provider, None, "refused",
                data={"table": "proposals", "id": record.id}))
            raise SwapRefused(f"Proposal #{record.id} was changed outside the host (its seal does not match), "
                              "so it cannot be decided; the journal records it as store-tampered.")
        if record.status == TAMPERED:
            raise SwapRefused(f"Proposal #{record.id} was changed outside the host (its seal did not match), "
                              "so it cannot be decided; the journal records it as store-tampered.")
        if record.status != PENDING:
            raise SwapRefused(f"Proposal #{record.id} is {record.status}; only pending proposals can be decided.")
        return record


def _domain(record: ProposalRecord) -> Domain:
    return Domain.parse(record.domain)
