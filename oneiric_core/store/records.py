"""What the state store holds, as typed records: every repository returns these, never a
backend's raw rows, so callers read the same objects whichever database is behind the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import ExitCode, OneiricError


class StoreError(OneiricError):
    """The state store cannot be opened, read or written (full disk, read-only file, corruption)."""

    exit_code = ExitCode.ERROR


# The hash chain over the journal (journal_hash.py defines what a hash covers). Meta keys:
ANCHOR_META = "journal_anchor"  # {"id", "hash"}: what the first row chains to (the last pruned row)
SEALED_META = "journal_sealed_through"  # the last id written before the chain existed
HEAD_META = "journal_head"  # {"id", "hash", "at"}: the head the host last published
# Schema 13 (issue 18): the rows after NODE_CHAINS_META's id chain per node (journal_hash.py
# format 2), each node's first onto its hash; each node's anchor (its last pruned row) and the
# head its host last published are kept under these prefixes and the node's name.
NODE_CHAINS_META = "journal_node_chains"  # {"id", "hash"}: the global chain's end at the switch
NODE_ANCHOR_META = "journal_anchor:"  # + node: {"id", "hash"}
NODE_HEAD_META = "journal_head:"  # + node: {"id", "hash", "at"}
IDS_META = "journal_ids_used_through"  # ids up to this one were given out before schema 7 (see below)
PRUNE_PROGRESS_META = "journal_prune_progress"  # written by a running prune (store.WalCheckpoints)
VACUUM_META = "store_incremental_vacuum"  # {"failed_at", "reason"}: the one-time VACUUM of schema 8 is owed
CHAIN_COLUMNS = "id, ts, kind, severity, domain, key, provider, actor, outcome, duration_ms, message, data"

# A host renews its lease every second; one this old belongs to a host that is gone (or hung),
# and another process may take over. Clients use it to tell whether a host is running.
LEASE_STALE_AFTER_S = 5.0

ACTIVITY_STATES = ("active", "paused", "draining", "drained")

# Journal retention: rows per prune transaction and pages per incremental vacuum when the
# store prunes by itself (prune_journal; retention.py sizes the host's steps to a time instead).
PRUNE_BATCH_ROWS = 5000
RECLAIM_BATCH_PAGES = 400
RESTART_FRAMES = 1000  # a prune starts the WAL over once it holds this many frames (WalCheckpoints)
# An open incident keeps every event from this long before it opened (its timeline's start).
INCIDENT_WINDOW_LEAD_S = 1.0


@dataclass(slots=True)
class ActivityRecord:
    domain: str
    key: str
    state: str  # "active" | "paused" | "draining" | "drained"
    note: str | None = None
    actor: str | None = None
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FleetCellRow:
    """One node's key as the fleet view reads it: what it serves and its health (None: none yet)."""

    node: str | None
    domain: str
    key: str
    provider: str | None
    state: str
    health: str | None


@dataclass(slots=True)
class LifecycleSnapshot:
    domain: str
    key: str
    state: str
    provider: str | None
    source: str | None
    pending_provider: str | None = None
    last_error: str | None = None
    inflight: int = 0
    last_swap: dict[str, Any] | None = None
    updated_at: float = 0.0


@dataclass(slots=True)
class HealthSnapshot:
    domain: str
    key: str
    provider: str | None
    status: str
    latency_ms: float | None
    message: str
    checked_at: float
    changed_at: float
    samples: list[float | None] = field(default_factory=list)  # recent latencies, oldest first


@dataclass(slots=True)
class ProposalRecord:
    """A requested swap waiting for (or past) a decision; see approvals.py for the rules."""

    domain: str
    key: str
    from_provider: str | None
    to_provider: str
    source: str  # who proposed it: console, cli, watcher, remote, runbook
    requested_by: str
    created_at: float
    status: str = "pending"  # pending | approved | rejected | expired | applied | failed | interrupted
    to_source: str | None = None
    force: bool = False
    reason: str = ""
    expires_at: float | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    outcome: str | None = None
    outcome_reason: str | None = None
    id: int | None = None
    requested_by_id: str | None = None  # the principal ids the rules compare (principal.py)
    decided_by_id: str | None = None
    # Whether the row's seal matched when it was read: None when this process holds no key to
    # check it with (seal.py); never stored.
    sealed: bool | None = None
    node: str | None = None  # the node whose host wrote it: only that host decides and applies it


@dataclass(slots=True)
class CommandRecord:
    """One request from a client to the host (see commands.py for the kinds and the loop)."""

    kind: str
    args: dict[str, Any]
    requested_by: str
    created_at: float
    deadline: float | None = None  # after this the client no longer waits: never start it
    status: str = "pending"  # pending | running | done | failed | expired
    started_at: float | None = None
    result: dict[str, Any] | None = None  # {"message": str, "data": {...}}
    exit_code: int | None = None
    finished_at: float | None = None
    id: int | None = None
    requested_by_id: str | None = None
    sealed: bool | None = None  # as ProposalRecord.sealed


@dataclass(slots=True)
class LeaseInfo:
    """A node's host: which process holds the node's lease, renewed by its heartbeat."""

    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float
    node: str = field(default="", compare=False)
    version: str = field(default="", compare=False)  # the program the host runs
    stopped_at: float | None = field(default=None, compare=False)  # released (a clean stop)
    # What the host last reported of its node (node_summary.py): counts, manifest versions.
    summary: dict[str, Any] = field(default_factory=dict, compare=False)

    def is_stale(self, now: float, stale_after_s: float) -> bool:
        """True when the holder has not heartbeaten for longer than `stale_after_s`."""
        return now - self.heartbeat_at > stale_after_s


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One point of the journal's hash chain: a row's id and hash (the anchor, the head).
    `at` is when a host published it as its head (None for any other link)."""

    id: int
    hash: str
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "hash": self.hash}
        if self.at is not None:
            out["at"] = self.at
        return out


@dataclass(frozen=True, slots=True)
class RetentionHold:
    """An open incident that the journal's retention may not prune past: `first_id` is the
    first row it keeps (an event of a component it involves, or one since it opened)."""

    incident: int
    title: str
    opened_at: float
    first_id: int
    ref: str | None  # "domain/key" when the row is kept as one of that component's events

    def to_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "title": self.title, "opened_at": self.opened_at,
                "first_id": self.first_id, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one prune transaction did: rows `deleted`, whether retention has nothing more to
    take now (`done`), and the open incident that stopped it, if one did."""

    deleted: int
    done: bool
    held_by: RetentionHold | None = None


class ChainState(NamedTuple):
    """Where the journal's chains start and what they must reach, as the store keeps them."""

    anchor: ChainLink  # what the first row chains to: the last pruned row, or GENESIS
    sealed_through: int  # the last id written before the chain existed (ids may skip up to it)
    published: ChainLink | None  # the head a host published before the chains went per node
    # The rows after `node_start.id` chain per node, each node's first onto `node_start.hash`
    # (or onto its anchor, once some of its rows were pruned); the heads its host published.
    node_start: ChainLink
    node_anchors: dict[str, ChainLink]
    node_heads: dict[str, ChainLink]


@dataclass
class IncidentRecord:
    """One incident row (runbooks/incidents.py gives it its rules); `refs` and `follow_ups`
    are decoded from their JSON columns. Not slotted: runbooks' `Incident` extends it."""

    id: int
    title: str
    severity: str
    status: str
    commander: str
    opened_at: float
    closed_at: float | None = None
    refs: list[str] = field(default_factory=list)  # "domain/key" of the components involved
    tree: str | None = None
    summary: str = ""
    impact: str = ""
    root_cause: str = ""
    resolution: str = ""
    follow_ups: list[str] = field(default_factory=list)
    node: str | None = None  # the node it was opened on (None: before schema 12)


@dataclass(frozen=True, slots=True)
class IncidentEntryRecord:
    """One entry of an incident's recorded timeline; `data` decoded from its JSON column."""

    id: int
    incident_id: int
    ts: float
    kind: str
    actor: str | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestRecord:
    """A request for a node's host, written by anyone in a fleet store (requests.py). Who
    wrote it is the database's word (`requested_by_id`, the session's role), never the
    writer's."""

    id: int
    node: str
    kind: str
    args: dict[str, Any]
    display: str | None
    requested_by_id: str
    created_at: float
    deadline: float | None
    status: str  # pending, taken, done, failed, refused, withdrawn
    taken_at: float | None = None
    command_id: int | None = None
    result: dict[str, Any] | None = None
    exit_code: int | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ("pending", "taken")


@dataclass(slots=True)
class RolloutStep:
    """One node's part of a rollout (rollout.py)."""

    rollout_id: int
    node: str
    batch: int
    from_provider: str | None
    status: str  # pending, swapping, soaking, done, failed, rolling-back, rolled-back, rollback-failed, skipped
    request_id: int | None = None
    message: str = ""
    started_at: float | None = None
    soak_from: float | None = None
    finished_at: float | None = None


@dataclass(slots=True)
class RolloutRecord:
    """A rolling swap of one key over a fleet's nodes, batch by batch (rollout.py)."""

    id: int
    domain: str
    key: str
    provider: str
    plan: list[list[str]]  # the batches, in order; the first is the canary
    options: dict[str, Any]
    reason: str
    display: str | None
    requested_by_id: str
    created_at: float
    status: str  # pending, approved, running, halted, done, rejected
    decided_by_id: str | None
    decided_at: float | None
    batch: int
    halted_reason: str | None
    coordinator: str | None
    coordinator_at: float | None
    updated_at: float
    steps: list[RolloutStep] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.key}"

    @property
    def finished(self) -> bool:
        return self.status in ("done", "halted", "rejected")
