"""The state store: the journal (every Event), activity, the host's lifecycle and health
snapshots, proposals, commands, incidents, the host lease and a small key/value table.

A package split by concern: `backend.py` is the thin layer (connect, execute, query,
transaction, dialect) with `sqlite_backend.py` its SQLite implementation; each concern is a
repository written once against it (journal.py, prune.py, activity.py, snapshots.py,
proposals.py, commands.py, leases.py, meta.py, incidents.py) returning typed records
(records.py); `StateStore` (state_store.py) composes them for callers. Every public name is
importable from here as it was from the one module this package replaces."""

from __future__ import annotations

from .backend import Backend, Checkpoints, Connection, Dialect, Listener, Maintenance, NoCheckpoints
from .codec import _dom, _event_params
from .records import (
    ACTIVITY_STATES,
    ANCHOR_META,
    HEAD_META,
    IDS_META,
    INCIDENT_WINDOW_LEAD_S,
    LEASE_STALE_AFTER_S,
    PRUNE_BATCH_ROWS,
    PRUNE_PROGRESS_META,
    RECLAIM_BATCH_PAGES,
    RESTART_FRAMES,
    SEALED_META,
    VACUUM_META,
    ActivityRecord,
    ChainLink,
    ChainState,
    CommandRecord,
    HealthSnapshot,
    IncidentEntryRecord,
    IncidentRecord,
    LeaseInfo,
    LifecycleSnapshot,
    ProposalRecord,
    PruneStep,
    RequestRecord,
    RetentionHold,
    RolloutRecord,
    RolloutStep,
    StoreError,
)
from .sqlite_backend import SqliteBackend, WalCheckpoints
from .sqlite_migrations import AUTO_VACUUM_INCREMENTAL, MIGRATIONS, SCHEMA_VERSION, VACUUM_RETRY_S, Migration
from .state_store import StateStore

__all__ = [
    "ACTIVITY_STATES", "ANCHOR_META", "AUTO_VACUUM_INCREMENTAL", "ActivityRecord", "Backend", "ChainLink",
    "ChainState", "Checkpoints", "CommandRecord", "Connection", "Dialect", "HEAD_META", "HealthSnapshot", "IDS_META",
    "INCIDENT_WINDOW_LEAD_S", "IncidentEntryRecord", "IncidentRecord", "LEASE_STALE_AFTER_S", "LeaseInfo",
    "LifecycleSnapshot", "Listener", "MIGRATIONS", "Maintenance", "Migration", "NoCheckpoints", "PRUNE_BATCH_ROWS",
    "PRUNE_PROGRESS_META", "ProposalRecord", "PruneStep", "RECLAIM_BATCH_PAGES", "RESTART_FRAMES", "RequestRecord",
    "RetentionHold", "RolloutRecord", "RolloutStep", "SCHEMA_VERSION", "SEALED_META", "SqliteBackend", "StateStore",
    "StoreError", "VACUUM_META", "VACUUM_RETRY_S", "WalCheckpoints", "_dom", "_event_params",
]
