"""What a new host does about the swaps its predecessor left half done.

A host that dies mid-swap (SIGKILL, power loss, OOM) cannot journal anything. Two durable
traces say a swap was under way, both written *before* the new provider is built:

* the lifecycle snapshot of the key is `activating` with a `pending_provider` (written in
  the same transaction as the `swap-started` journal entry);
* the proposal that asked for it is `approved` (decided, not yet settled).

The next host reads them before it clears the snapshots, journals one `swap-interrupted`
per key and marks the proposal `interrupted`. It then activates every key as the settings
select, exactly as on any start, so the provider the settings choose serves again.
"""

from __future__ import annotations

from collections.abc import Callable

from .approvals import Approvals
from .domains import Domain
from .events import Event, Severity
from .store import LeaseInfo, LifecycleSnapshot, ProposalRecord, StateStore


def recover_interrupted_swaps(
    store: StateStore, approvals: Approvals, emit: Callable[[Event], object], *,
    previous: LeaseInfo | None, actor: str | None,
) -> list[Event]:
    """Journal and settle every swap the previous host started but never finished."""
    mid_swap = {(s.domain, s.key): s for s in store.all_lifecycle()
                if s.state == "activating" and s.pending_provider and s.provider}
    approved: dict[tuple[str, str], ProposalRecord] = {}
    for record in approvals.interrupted():  # oldest first: the newest per key wins
        approved[(record.domain, record.key)] = record
    who = (f"the previous host (pid {previous.pid} on {previous.hostname})" if previous is not None
           else "the previous host")
    events = []
    for domain, key in sorted(set(mid_swap) | set(approved)):
        events.append(_journal(emit, mid_swap.get((domain, key)), approved.get((domain, key)),
                               domain, key, who, previous, actor))
    for (domain, key), record in approved.items():
        approvals.interrupt(record, f"{who} stopped before the swap finished; "
                                    f"{domain}/{key} starts again as the settings select")
    return events


def _journal(emit: Callable[[Event], object], snap: LifecycleSnapshot | None, record: ProposalRecord | None,
             domain: str, key: str, who: str, previous: LeaseInfo | None, actor: str | None) -> Event:
    old = snap.provider if snap is not None else (record.from_provider if record else None)
    new = snap.pending_provider if snap is not None else (record.to_provider if record else None)
    proposal = f" (proposal #{record.id})" if record is not None else ""
    event = Event(
        "swap-interrupted",
        f"Swap of {domain}/{key} {old or 'nothing'} -> {new}{proposal} was interrupted: {who} stopped "
        f"mid-swap; {domain}/{key} starts again as the settings select",
        Severity.WARNING, Domain.parse(domain), key, new, actor, "interrupted",
        data={"from": old, "to": new, "proposal": record.id if record else None,
              "previous_host": None if previous is None else {"pid": previous.pid, "hostname": previous.hostname}},
    )
    emit(event)
    return event
