"""`StateStore`: the one object callers hold, a thin facade over the store's repositories.

Each concern (journal, retention, activity, snapshots, proposals, commands, leases, meta,
incidents) is a repository written once against a `Backend` (backend.py); this class only
opens the backend, composes the repositories over it and forwards to them, so every caller
keeps one object and one set of names whichever database is behind."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..domains import Domain
from ..events import Event
from ..seal import RowSeal
from .activity import ActivityRepo
from .backend import Backend, Checkpoints, Connection, Listener, NoCheckpoints, Row
from .commands import CommandRepo
from .incidents import INCIDENT_FIELDS, IncidentRepo
from .journal import JournalRepo
from .leases import LeaseRepo
from .meta import MetaRepo
from .proposals import ProposalRepo
from .prune import PruneRepo
from .records import (
    ActivityRecord,
    ChainLink,
    ChainState,
    CommandRecord,
    FleetCellRow,
    HealthSnapshot,
    IncidentEntryRecord,
    IncidentRecord,
    LeaseInfo,
    LifecycleSnapshot,
    ProposalRecord,
    PruneStep,
    StoreError,
)
from .requests import RequestRepo
from .rollouts import RolloutRepo
from .scope import NodeScope, default_node
from .seals import Seals
from .snapshots import SnapshotRepo
from .sqlite_backend import SqliteBackend


def _postgresql(url: str) -> Backend:
    """The PostgreSQL backend, imported only when a store URL asks for it."""
    scheme = url.partition("://")[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise StoreError(f"cannot open the state store: '{scheme}://' is not a store URL (use postgresql://...)")
    try:
        from .pg_backend import PgBackend
    except ImportError as exc:
        raise StoreError(f"cannot open the state store {url.split('@')[-1]}: PostgreSQL needs psycopg "
                         "(pip install 'oneiric-console[pg]')") from exc
    return PgBackend(url)

T = TypeVar("T")


class StateStore:
    """The state store of a state dir. Safe to use from many threads and many processes."""

    INCIDENT_FIELDS = INCIDENT_FIELDS

    def __init__(self, path: Path, *, url: str | None = None, node: str | None = None,
                 busy_timeout_ms: int = 5000) -> None:
        """`path` is the SQLite file in the state directory; with a `url`
        (`postgresql://...`), the store is that database's instead and `path` only says
        which state directory this process keeps its own files in (the seal key). `node` is
        the node this process writes as and whose snapshots it reads (scope.py)."""
        self.path = Path(path)
        self.node = node or default_node()
        self.url = url
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._sqlite: SqliteBackend | None = None
        if url:
            self.backend: Backend = _postgresql(url)
        else:
            self._sqlite = SqliteBackend(self.path, busy_timeout_ms=busy_timeout_ms)
            self.backend = self._sqlite
        self._seals = Seals(self.backend.where, str(self.path.parent / "seal.key"))
        self.scope = NodeScope(self.node, shared=not self.backend.holds_one_node)
        self.journal_repo = JournalRepo(self.backend, self.scope)
        self.prune_repo = PruneRepo(self.backend, self.journal_repo)
        self.activity_repo = ActivityRepo(self.backend, self.scope)
        self.snapshots = SnapshotRepo(self.backend, self.scope)
        self.proposal_repo = ProposalRepo(self.backend, self._seals, self.scope)
        self.command_repo = CommandRepo(self.backend, self._seals, self.scope)
        self.leases = LeaseRepo(self.backend, self.journal_repo, self.scope, __version__)
        self.meta = MetaRepo(self.backend)
        self.incident_repo = IncidentRepo(self.backend, self.scope)
        self.requests = RequestRepo(self.backend)
        self.rollouts = RolloutRepo(self.backend)

    # ------------------------------------------------------------------ shared state

    @property
    def seal(self) -> RowSeal | None:
        """The key that seals proposal and command rows (seal.py); set by the engine."""
        return self._seals.seal

    @seal.setter
    def seal(self, value: RowSeal | None) -> None:
        self._seals.seal = value

    @property
    def last_published_head(self) -> ChainLink | None:
        """The journal head this process published last (its heartbeat)."""
        return self.journal_repo.last_published_head

    @property
    def where(self) -> str:
        """The store as messages name it: its file, or its URL without the password."""
        return self.backend.where

    @property
    def read_only(self) -> bool:
        return self.backend.read_only

    @property
    def write_failure(self) -> str | None:
        return self.backend.write_failure

    @property
    def schema_version(self) -> int:
        return self.backend.schema_version

    # ------------------------------------------------------------------ transactions

    def batch(self) -> AbstractContextManager[None]:
        """Make the writes inside one transaction (a swap's journal and snapshot writes).

        Holds the lock for its duration, so keep it short and never await inside it. If a
        write inside fails, everything in the batch is rolled back and StoreError raised."""
        return self.backend.batch()

    def read_snapshot(self) -> AbstractContextManager[None]:
        """Reads inside see one state of the store (`journal verify` must not see a prune half way)."""
        return self.backend.read_snapshot()

    def listen(self) -> Listener:
        """A Listener that wakes when the store changes (a journal append, ...): for readers
        that follow the store (a client console, `journal --follow`, a node's host)."""
        return self.backend.listen()

    def data_version(self) -> int:
        """Changes whenever *another* connection commits: lets a poller skip unchanged rounds."""
        return self.backend.data_version()

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise StoreError."""
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Kept for the benchmarks and tests that reach under the repositories.
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.backend.read(sql, params)

    def _write(self, fn: Callable[[Connection], T], *, action: str = "write") -> T:
        return self.backend.write(fn, action=action)

    def _file(self, what: str) -> SqliteBackend:
        """The SQLite backend, for what only a file has (PRAGMAs, the tests' lock)."""
        if self._sqlite is None:
            raise StoreError(f"cannot {what} the state store {self.where}: it is PostgreSQL's, not a SQLite file")
        return self._sqlite

    @property
    def _conn(self) -> sqlite3.Connection | None:
        return self._file("reach the connection of")._conn

    @property
    def _lock(self) -> threading.RLock:
        return self._file("lock")._lock

    def _chain_tip_below(self, conn: Connection, through: int) -> str:
        return self.journal_repo._chain_tip_below(conn, through)

    # ------------------------------------------------------------------ space (SQLite's file by hand)

    def pragma(self, name: str, value: int | str | None = None) -> Any:
        """Read (or set) one PRAGMA on this store's connection, e.g. `pragma("journal_mode")`."""
        return self._file("read a PRAGMA of").pragma(name, value)

    def auto_vacuum(self) -> int:
        return self._file("read auto_vacuum of").auto_vacuum()

    def vacuum_owed(self) -> str | None:
        """Why pruned rows do not give their space back, or None when they do (a server
        database gives it back by itself)."""
        maintenance = self.backend.maintenance
        return None if maintenance is None else maintenance.vacuum_owed()

    def free_pages(self) -> int:
        maintenance = self.backend.maintenance
        return 0 if maintenance is None else maintenance.free_pages()

    def file_bytes(self) -> int:
        """What the store takes: the SQLite file and its WAL, or the server's tables."""
        return self.backend.size_bytes()

    def checkpoints_aside(self) -> AbstractContextManager[Checkpoints]:
        maintenance = self.backend.maintenance
        if maintenance is None:
            return contextlib.nullcontext(NoCheckpoints())
        return maintenance.checkpoints_aside()

    def reclaim_space(self, pages: int) -> int:
        maintenance = self.backend.maintenance
        return 0 if maintenance is None else maintenance.reclaim_space(pages)

    # ------------------------------------------------------------------ journal

    def append(self, event: Event) -> Event:
        """Store one event; sets and returns it with `event.id`."""
        return self.journal_repo.append(event)

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        return self.journal_repo.append_many(events)

    def chain_state(self) -> ChainState:
        return self.journal_repo.chain_state()

    def published_head(self) -> ChainLink | None:
        return self.journal_repo.published_head()

    def chain_rows(self, after_id: int, limit: int) -> list[tuple[Any, ...]]:
        return self.journal_repo.chain_rows(after_id, limit)

    def journal(self, *, limit: int = 200, after_id: int | None = None, kinds: Iterable[str] | None = None,
                domain: Domain | str | None = None, key: str | None = None, since_ts: float | None = None,
                text: str | None = None, node: str | None = None) -> list[Event]:
        """The newest `limit` matching events, returned oldest first (JournalRepo.journal)."""
        return self.journal_repo.journal(limit=limit, after_id=after_id, kinds=kinds, domain=domain, key=key,
                                         since_ts=since_ts, text=text, node=node)

    def last_journal_id(self) -> int:
        return self.journal_repo.last_journal_id()

    def oldest_journal_row(self) -> tuple[int, float] | None:
        return self.journal_repo.oldest_journal_row()

    def count_journal(self, *, kind: str | None = None, since_ts: float | None = None,
                      domain: Domain | str | None = None, key: str | None = None) -> int:
        return self.journal_repo.count_journal(kind=kind, since_ts=since_ts, domain=domain, key=key)

    # ------------------------------------------------------------------ retention

    def prune_journal(self, *, max_age_s: float | None, max_rows: int | None, now: float | None = None) -> int:
        return self.prune_repo.prune_journal(max_age_s=max_age_s, max_rows=max_rows, now=now)

    def journal_rows_through(self, max_rows: int | None, *, step: int = 20_000) -> int | None:
        return self.prune_repo.journal_rows_through(max_rows, step=step)

    def prune_journal_batch(self, *, cutoff: float | None, rows_through: int | None, limit: int) -> PruneStep:
        return self.prune_repo.prune_journal_batch(cutoff=cutoff, rows_through=rows_through, limit=limit)

    # ------------------------------------------------------------------ activity and snapshots

    def set_activity(self, record: ActivityRecord) -> None:
        self.activity_repo.set_activity(record)

    def get_activity(self, domain: Domain | str, key: str) -> ActivityRecord | None:
        return self.activity_repo.get_activity(domain, key)

    def all_activity(self) -> list[ActivityRecord]:
        return self.activity_repo.all_activity()

    def put_lifecycle(self, snap: LifecycleSnapshot) -> None:
        self.snapshots.put_lifecycle(snap)

    def get_lifecycle(self, domain: Domain | str, key: str) -> LifecycleSnapshot | None:
        return self.snapshots.get_lifecycle(domain, key)

    def all_lifecycle(self) -> list[LifecycleSnapshot]:
        return self.snapshots.all_lifecycle()

    def clear_lifecycle(self) -> None:
        self.snapshots.clear_lifecycle()

    def put_health(self, snap: HealthSnapshot) -> None:
        self.snapshots.put_health(snap)

    def get_health(self, domain: Domain | str, key: str) -> HealthSnapshot | None:
        return self.snapshots.get_health(domain, key)

    def all_health(self) -> list[HealthSnapshot]:
        return self.snapshots.all_health()

    def clear_health(self) -> None:
        self.snapshots.clear_health()

    def fleet_cells(self) -> list[FleetCellRow]:
        return self.snapshots.fleet_cells()

    def lifecycle_of(self, node: str, domain: Domain | str, key: str) -> LifecycleSnapshot | None:
        return self.snapshots.lifecycle_of(node, domain, key)

    def health_of(self, node: str, domain: Domain | str, key: str) -> HealthSnapshot | None:
        return self.snapshots.health_of(node, domain, key)

    # ------------------------------------------------------------------ proposals and commands

    def put_proposal(self, record: ProposalRecord) -> ProposalRecord:
        return self.proposal_repo.put_proposal(record)

    def get_proposal(self, proposal_id: int) -> ProposalRecord | None:
        return self.proposal_repo.get_proposal(proposal_id)

    def find_proposal(self, proposal_id: int) -> ProposalRecord | None:
        return self.proposal_repo.find_proposal(proposal_id)

    def proposals(self, *, status: str | None = None, limit: int = 200, fleet: bool = False) -> list[ProposalRecord]:
        return self.proposal_repo.proposals(status=status, limit=limit, fleet=fleet)

    def record_command(self, kind: str, args: dict[str, Any], requested_by: str, requested_by_id: str, *,
                       now: float | None = None) -> CommandRecord:
        return self.command_repo.record_command(kind, args, requested_by, requested_by_id, now=now)

    def get_command(self, command_id: int) -> CommandRecord | None:
        return self.command_repo.get_command(command_id)

    def commands_after(self, command_id: int, limit: int = 1000) -> list[CommandRecord]:
        return self.command_repo.commands_after(command_id, limit)

    def finish_command(self, command_id: int, status: str, result: dict[str, Any], exit_code: int,
                       now: float | None = None) -> None:
        self.command_repo.finish_command(command_id, status, result, exit_code, now)

    def fail_running_commands(self, reason: str, exit_code: int = 1, now: float | None = None) -> int:
        return self.command_repo.fail_running_commands(reason, exit_code, now)

    def last_command_id(self) -> int:
        return self.command_repo.last_command_id()

    def prune_commands(self, max_age_s: float, now: float | None = None) -> int:
        return self.command_repo.prune_commands(max_age_s, now)

    # ------------------------------------------------------------------ lease

    def acquire_lease(self, pid: int, hostname: str, *, stale_after_s: float = 5.0, now: float | None = None,
                      holder_dead: Callable[[LeaseInfo], bool] | None = None) -> tuple[bool, LeaseInfo | None]:
        return self.leases.acquire_lease(pid, hostname, stale_after_s=stale_after_s, now=now,
                                         holder_dead=holder_dead)

    def heartbeat(self, pid: int, hostname: str, now: float | None = None) -> bool:
        return self.leases.heartbeat(pid, hostname, now)

    def release_lease(self, pid: int, hostname: str) -> bool:
        return self.leases.release_lease(pid, hostname)

    def current_lease(self) -> LeaseInfo | None:
        return self.leases.current_lease()

    def nodes(self) -> list[LeaseInfo]:
        return self.leases.nodes()

    def report_node(self, pid: int, hostname: str, summary: dict[str, Any]) -> bool:
        return self.leases.report(pid, hostname, summary)

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self.meta.get_meta(key, default)

    def delete_meta(self, key: str) -> None:
        self.meta.delete_meta(key)

    def set_meta(self, key: str, value: Any) -> None:
        self.meta.set_meta(key, value)

    def node_key(self, key: str) -> str:
        """The meta key for a host's own state (its watcher, telemetry, remote sources): on a
        fleet store each node keeps its own row, so one node's host does not overwrite what
        another's clients read."""
        return f"{key}@{self.node}" if self.scope.shared else key

    # ------------------------------------------------------------------ incidents

    def add_incident(self, values: dict[str, Any]) -> int:
        return self.incident_repo.add_incident(values)

    def update_incident(self, incident_id: int, values: dict[str, Any]) -> None:
        self.incident_repo.update_incident(incident_id, values)

    def get_incident(self, incident_id: int) -> IncidentRecord | None:
        return self.incident_repo.get_incident(incident_id)

    def incidents(self, *, status: str | None = None, limit: int = 100) -> list[IncidentRecord]:
        return self.incident_repo.incidents(status=status, limit=limit)

    def add_incident_entry(self, incident_id: int, ts: float, kind: str, actor: str | None, text: str,
                           data: str = "{}") -> None:
        self.incident_repo.add_incident_entry(incident_id, ts, kind, actor, text, data)

    def incident_entries(self, incident_id: int) -> list[IncidentEntryRecord]:
        return self.incident_repo.incident_entries(incident_id)

